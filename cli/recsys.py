"""``interests train`` / ``recommend`` / ``evaluate``: thin wrappers over :mod:`interests.recsys`."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import sdk_command


def _logs_options(func: Any) -> Any:
    func = click.option(
        "--map", "mapping", help="Column mapping, e.g. user=userId,item=movieId,time=timestamp,rating=rating."
    )(func)
    func = click.option(
        "--catalog", type=click.Path(exists=True), help="Item catalogue (CSV/JSON Lines/Parquet, gzip ok)."
    )(func)
    func = click.option(
        "--logs",
        "logs",
        multiple=True,
        required=True,
        type=click.Path(exists=True),
        help="Log files or folders (repeat the option for several).",
    )(func)
    return func


def _int_list(value: str, name: str | None) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; anything else is a usage error naming the option."""
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. 0,1,2")
    return out


def _read(logs: tuple[str, ...], catalog: str | None, mapping: str | None) -> Any:
    from interests.ingest import read_logs

    return read_logs(list(logs), mapping=mapping, catalog=catalog)


@click.command()
@_logs_options
@click.option(
    "--profiles",
    type=click.Path(exists=True, dir_okay=False),
    help="profiles.jsonl written by `interests extract`.",
)
@click.option(
    "--taxonomy",
    type=click.Path(exists=True, file_okay=False),
    help="Taxonomy folder written by `interests taxonomy build`.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default="model",
    show_default=True,
    help="Model folder to write.",
)
@click.option(
    "--epochs", type=int, default=40, show_default=True, help="Most epochs (early stopping on the holdout)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--holdout/--no-holdout",
    default=True,
    show_default=True,
    help="Pick epochs and fusion on each user's valid events (BENCHMARK.md split), then refit on all.",
)
@click.option(
    "--backbone/--no-backbone", default=True, show_default=True, help="Fuse the EASE item-item backbone."
)
@click.option(
    "--loss", type=click.Choice(["sampled_softmax", "bce"]), default="sampled_softmax", show_default=True
)
@click.option(
    "--encoder",
    default="hashing",
    show_default=True,
    help="Text encoder for item and profile texts (see interests.encode).",
)
@sdk_command
def train(
    logs: tuple[str, ...],
    catalog: str | None,
    mapping: str | None,
    profiles: str | None,
    taxonomy: str | None,
    output: str,
    epochs: int,
    seed: int,
    holdout: bool,
    backbone: bool,
    loss: str,
    encoder: str,
) -> None:
    """Train the two-tower recommender from logs, profiles and a taxonomy."""
    from interests.profile.store import read_profiles
    from interests.recsys import fit_two_tower

    parsed = _read(logs, catalog, mapping)
    profs = read_profiles(profiles) if profiles else None
    if profs:  # profiles written with --hash-user-ids: the logs' users get the same pseudonyms
        from interests.profile.privacy import match_ids

        parsed.histories = dict(match_ids(parsed.histories, [p.user_id for p in profs]))
    tax = None
    if taxonomy:
        from interests.taxonomy import Taxonomy

        tax = Taxonomy.load(taxonomy)
    model = fit_two_tower(
        parsed,
        profiles=profs,
        taxonomy=tax,
        holdout=holdout,
        epochs=epochs,
        seed=seed,
        backbone=backbone,
        loss=loss,
        encoder=encoder,
    )
    model.save(output)
    tl = model.train_log
    valid = f", holdout NDCG@20 {tl.best_valid:.4f}" if tl.best_valid is not None else ""
    click.echo(
        f"trained on {model.config.n_items} items, {len(parsed.histories)} users: "
        f"{tl.epochs} epochs in {tl.seconds:.1f}s{valid}, fusion {model.config.fusion}; wrote {output}/"
    )


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--user", "users", multiple=True, help="User id (repeat for several).")
@click.option("--items", help="Cold start: comma-separated item ids the new user interacted with.")
@click.option("--text", help="Cold start: a short description of the new user's interests.")
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="How many items.")
@click.option("--explain", is_flag=True, help="Show what drove each score (history items, interest nodes).")
@click.option(
    "--diverse",
    type=float,
    default=0.0,
    show_default=True,
    help="Re-rank across L1 domains (0 off .. 1 strongest).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list, one {user_id, items} object a user."
)
@sdk_command
def recommend(
    model_dir: str,
    users: tuple[str, ...],
    items: str | None,
    text: str | None,
    k: int,
    explain: bool,
    diverse: float,
    as_json: bool,
) -> None:
    """Recommend items for users of a trained MODEL_DIR, with reasons."""
    from interests.errors import ConfigError
    from interests.recsys import TwoTower
    from interests.recsys.explain import explanation_json, reason_lines

    model = TwoTower.load(model_dir)
    if not users and not items and not text:
        raise ConfigError("give --user U (a known user) or --items/--text (a new user)")
    out: list[dict[str, Any]] = []
    targets: list[tuple[str, Any, Any]] = []
    for u in users:
        ids, scores = model.recommend(u, k=k, diverse=diverse)
        targets.append((u, ids, scores))
    if items or text:
        seen = [i.strip() for i in (items or "").split(",") if i.strip()]
        ids, scores = model.recommend_new(seen, text=text, k=k, diverse=diverse)
        targets.append(("(new user)", ids, scores))
    titles = dict(zip(model.known.item_ids, model.titles, strict=True)) if model.known else {}
    for u, ids, scores in targets:
        recs = []
        for iid, s in zip(ids, scores, strict=True):
            rec: dict[str, Any] = {
                "item_id": str(iid),
                "title": titles.get(str(iid), ""),
                "score": round(float(s), 4),
            }
            if explain and u != "(new user)":
                rec |= explanation_json(model.explain(u, str(iid)), titles)
            recs.append(rec)
        out.append({"user_id": u, "items": recs})
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))  # always a list, one object a user
        return
    for block in out:
        click.echo(f"user {block['user_id']}")
        for n, rec in enumerate(block["items"], 1):
            click.echo(f"{n:>3}. {rec['title'] or rec['item_id']}  [{rec['item_id']}]  {rec['score']:.3f}")
            for line in reason_lines(rec):
                click.echo(f"       {line}")


@click.command()
@_logs_options
@click.option(
    "--profiles-dir",
    type=click.Path(file_okay=False),
    help="Folder of per-split profiles (train/, train+valid/, cold-valid/, cold-test/ profiles.jsonl).",
)
@click.option(
    "--extract", is_flag=True, help="Extract missing per-split profiles into --profiles-dir first (slow)."
)
@click.option(
    "--seeds",
    default="0,1,2",
    show_default=True,
    callback=lambda ctx, param, value: _int_list(value, param.name),
    help="Seeds of the trained models (comma-separated integers).",
)
@click.option("--variants", default=None, help="Two-tower variants (comma-separated) [default: all].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {segment: {model: metrics}}.")
@sdk_command
def evaluate(
    logs: tuple[str, ...],
    catalog: str | None,
    mapping: str | None,
    profiles_dir: str | None,
    extract: bool,
    seeds: list[int],
    variants: str | None,
    as_json: bool,
) -> None:
    """Evaluate the two-tower against EASE, ItemKNN and popularity (BENCHMARK.md protocol)."""
    from interests.errors import ConfigError
    from interests.recsys.evaluate import VARIANTS, cached_profiles, hashing_taxonomy
    from interests.recsys.evaluate import evaluate as run

    parsed = _read(logs, catalog, mapping)
    chosen = VARIANTS
    if variants:
        unknown = [v for v in variants.split(",") if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        chosen = {v: VARIANTS[v] for v in variants.split(",")}
    if extract and not profiles_dir:
        raise ConfigError("--extract needs --profiles-dir to write the profiles into")
    prof = cached_profiles(profiles_dir, extract=extract, catalog=parsed.catalog) if profiles_dir else None
    res = run(
        parsed,
        seeds=seeds,
        variants=chosen,
        profiles=prof,
        taxonomy=hashing_taxonomy(parsed.catalog) if prof else None,
    )
    if as_json:
        click.echo(json.dumps(res.table))
        return
    cols = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "diversity@20"]
    for seg, rows in res.table.items():
        click.echo(f"segment {seg}")
        click.echo(f"{'model':<24}" + "".join(f"{c:>14}" for c in cols))
        for name, row in rows.items():
            click.echo(f"{name:<24}" + "".join(f"{row.get(c, float('nan')):>14.4f}" for c in cols))
