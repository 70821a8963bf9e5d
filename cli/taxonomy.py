"""``interests taxonomy``: build, show and apply the shared interest taxonomy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .common import note, sdk_command

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def _read(
    profiles: str,
    catalog: str | None,
    logs: tuple[str, ...],
    mapping: str | None,
    catalog_mapping: str | None,
) -> tuple[list[Any], Any, dict[str, Any] | None]:
    from interests.events import Catalog
    from interests.ingest import read_catalog, read_logs
    from interests.profile.store import read_profiles

    profs = read_profiles(profiles)
    if not profs:
        raise click.ClickException(f"{profiles} holds no profiles; write some with `interests extract`")
    cat = read_catalog(catalog, mapping=catalog_mapping) if catalog else Catalog()
    histories = None
    if logs:
        from interests.profile.privacy import hashed_profiles, match_ids

        wanted = {p.user_id for p in profs}
        hashed = hashed_profiles(wanted)  # pseudonyms: read every user, hash, then match
        parsed = read_logs(list(logs), mapping=mapping, catalog=cat, users=None if hashed else wanted)
        histories = {u: h for u, h in match_ids(parsed.histories, wanted).items() if u in wanted}
    return profs, cat, histories


def _logs_options(func: Any) -> Any:
    func = click.option(
        "--catalog-map",
        "catalog_mapping",
        help="Catalogue column mapping, e.g. item=movieId,title=title,categories=genres.",
    )(func)
    func = click.option(
        "--map",
        "mapping",
        help="Log column mapping, e.g. user=userId,item=movieId,time=timestamp,rating=rating.",
    )(func)
    func = click.option(
        "--logs",
        multiple=True,
        type=click.Path(exists=True),
        help="Interaction logs (repeatable): exact per-domain rhythms, trends and sentiment.",
    )(func)
    return func


@click.group()
def taxonomy() -> None:
    """Build, show and apply the shared interest taxonomy (global domains > topics)."""


@taxonomy.command()
@click.argument("profiles", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--catalog", type=click.Path(exists=True), required=True, help="Item catalogue: every item is classified."
)
@_logs_options
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default="taxonomy",
    show_default=True,
    help="Output folder (taxonomy.json, classifier.safetensors, items.parquet, user_vectors.parquet).",
)
@click.option(
    "--encoder",
    default=None,
    help="Text encoder: hashing (default), minilm, smollm2-135m, or an encoder model folder.",
)
@click.option(
    "--domains", "n_domains", type=int, help="Number of global domains [default: chosen by silhouette]."
)
@click.option("--seed", type=int, default=0, show_default=True)
@_JSON
@sdk_command
def build(
    profiles: str,
    catalog: str,
    logs: tuple[str, ...],
    mapping: str | None,
    catalog_mapping: str | None,
    output: str,
    encoder: str | None,
    n_domains: int | None,
    seed: int,
    as_json: bool,
) -> None:
    """Consolidate the users' domains and topics in PROFILES into one shared taxonomy."""
    from interests.taxonomy import USER_VECTORS_FILE, build_taxonomy

    profs, cat, histories = _read(profiles, catalog, logs, mapping, catalog_mapping)
    tax = build_taxonomy(profs, cat, histories=histories, encoder=encoder, n_domains=n_domains, seed=seed)
    out = Path(output)
    tax.save(out)
    vectors = tax.user_vectors(profs, histories)
    vectors.save(out / USER_VECTORS_FILE)
    clf = tax.metrics.get("classifier", {})
    acc = clf.get("topic_accuracy")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "output": str(out),
                    "domains": len(tax.domains),
                    "topics": len(tax.topics),
                    "profiles": len(profs),
                    "items_classified": len(tax.assignments),
                    "domain_accuracy": clf.get("domain_accuracy"),
                    "topic_accuracy": acc,
                }
            )
        )
    note(
        f"{len(tax.domains)} domains, {len(tax.topics)} topics from {len(profs)} profiles; "
        f"{len(tax.assignments)} items classified"
        + (
            f" (held-out accuracy: domain {clf.get('domain_accuracy'):.3f}, topic {acc:.3f})"
            if acc is not None
            else ""
        )
        + f" -> {out}/"
    )


@taxonomy.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--examples", "n_examples", type=int, default=3, show_default=True, help="Example items per node."
)
@_JSON
@sdk_command
def show(directory: str, n_examples: int, as_json: bool) -> None:
    """Print the taxonomy in DIRECTORY as a tree with sizes and example items."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    from interests.taxonomy import Taxonomy

    tax = Taxonomy.load(directory)
    m = tax.metrics
    if as_json:
        doc = {
            "directory": directory,
            "encoder": tax.encoder,
            "items": len(tax.assignments),
            "domains": [
                {
                    "id": d.id,
                    "label": d.label,
                    "names": list(d.names),
                    "items": d.size,
                    "users": d.n_users,
                    "examples": list(d.example_items[:n_examples]),
                    "topics": [
                        {
                            "id": t.id,
                            "label": t.label,
                            "items": t.size,
                            "users": t.n_users,
                            "examples": list(t.example_items[:n_examples]),
                        }
                        for t in d.topics
                    ],
                }
                for d in tax.domains
            ],
        }
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    root = Tree(
        f"[bold]taxonomy[/] {escape(directory)}: {len(tax.domains)} domains, {len(tax.topics)} topics, "
        f"{len(tax.assignments)} items, encoder {escape(tax.encoder)}, {m.get('n_profiles', '?')} profiles"
    )
    for d in tax.domains:
        branch = root.add(
            f"[bold]{d.id}[/] {escape(d.label)}  [dim]{d.size} items, {d.n_users} users"
            + (f"; also: {escape(', '.join(d.names[1:]))}" if len(d.names) > 1 else "")
            + "[/]"
        )
        if d.example_items:
            branch.add("[dim]e.g. " + escape("; ".join(d.example_items[:n_examples])) + "[/]")
        for t in d.topics:
            leaf = branch.add(f"[bold]{t.id}[/] {escape(t.label)}  [dim]{t.size} items, {t.n_users} users[/]")
            if t.example_items:
                leaf.add("[dim]e.g. " + escape("; ".join(t.example_items[:n_examples])) + "[/]")
    tty = sys.stdout.isatty()  # sized to the terminal only there; piped, lines are never cut
    Console(soft_wrap=True, width=None if tty else 100_000).print(root)


@taxonomy.command()
@click.argument("profiles", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--taxonomy",
    "taxonomy_dir",
    type=click.Path(exists=True, file_okay=False),
    required=True,
    help="A folder written by `interests taxonomy build`.",
)
@click.option(
    "--catalog", type=click.Path(exists=True), help="Catalogue with the texts of items new to the taxonomy."
)
@_logs_options
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    default="vectors",
    show_default=True,
    help="A .parquet file for the user vectors, or a folder: the taxonomy with the new items"
    " plus user_vectors.parquet.",
)
@_JSON
@sdk_command
def apply(
    profiles: str,
    taxonomy_dir: str,
    catalog: str | None,
    logs: tuple[str, ...],
    mapping: str | None,
    catalog_mapping: str | None,
    output: str,
    as_json: bool,
) -> None:
    """Map PROFILES onto an existing taxonomy (new users, new items) without rebuilding it."""
    from interests.taxonomy import USER_VECTORS_FILE, Taxonomy, apply_taxonomy

    profs, cat, histories = _read(profiles, catalog, logs, mapping, catalog_mapping)
    tax = Taxonomy.load(taxonomy_dir)
    before = len(tax.assignments)
    vectors = apply_taxonomy(tax, profs, histories, catalog=cat if catalog else None)
    out = Path(output)
    if out.suffix == ".parquet":
        vectors.save(out)
    else:
        vectors.save(out / USER_VECTORS_FILE)
        tax.save(out)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "output": str(out),
                    "users": len(vectors.user_ids),
                    "columns": len(vectors.columns),
                    "new_items_classified": len(tax.assignments) - before,
                }
            )
        )
    note(
        f"{len(vectors.user_ids)} users x {len(vectors.columns)} columns; "
        f"{len(tax.assignments) - before} new items classified -> {out}"
    )


__all__ = ["taxonomy"]
