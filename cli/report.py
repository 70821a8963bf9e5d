"""``interests report``: HTML or Markdown profile reports."""

from __future__ import annotations

from pathlib import Path

import click

from .common import log_read_options, note, sdk_command, user_list, users_option

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("report")
@click.argument("profiles", type=_FILE)
@users_option
@click.option("--all", "all_users", is_flag=True, help="Write a run index with every user.")
@click.option("--taxonomy", type=_DIR, default=None, help="Taxonomy folder: domain distribution from it.")
@click.option(
    "--model", type=_DIR, default=None, help="Two-tower model folder: add recommendations with reasons."
)
@click.option(
    "-k",
    "--k",
    "k",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Recommendations per user (with --model).",
)
@click.option(
    "--logs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Log files or folders (repeatable): evidence rows, review snippets, exact charts.",
)
@log_read_options
@click.option(
    "--errors",
    type=_FILE,
    default=None,
    help="Error records of the run (JSON Lines) [default: <profiles>.errors.jsonl when it exists].",
)
@click.option("--quarantine", type=_FILE, default=None, help="Quarantined rows of the run (JSON Lines).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Report file: .html or .md; - writes to standard output (give --format).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default=None,
    help="Output format (default: from the output's suffix).",
)
@click.option(
    "--template-dir", type=_DIR, default=None, help="Folder with templates that override the built-in ones."
)
@click.option("--title", default=None, help="Page title.")
@click.option(
    "--sections",
    type=click.IntRange(0),
    default=200,
    show_default=True,
    help="With --all: how many users to show in full after the index (0: none; all are listed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON on stdout.")
@sdk_command
def report(
    profiles: Path,
    user: tuple[str, ...],
    all_users: bool,
    taxonomy: Path | None,
    model: Path | None,
    k: int,
    logs: tuple[Path, ...],
    catalog: str | None,
    mapping: str | None,
    catalog_mapping: str | None,
    strict: bool,
    strict_catalog: bool,
    max_events_per_user: int | None,
    keep_duplicates: bool,
    tz: str,
    errors: Path | None,
    quarantine: Path | None,
    output: Path,
    fmt: str | None,
    template_dir: Path | None,
    title: str | None,
    sections: int,
    as_json: bool,
) -> None:
    """Write an explainable report of PROFILES (a profiles.jsonl file).

    One user's page with --user USER_ID, or a run index with every user with
    --all. Give the logs and catalogue for evidence rows and review snippets.

    \b
    interests report out/profiles.jsonl --user u001 \\
        --logs examples/logs/events.csv --catalog examples/logs/catalog.jsonl -o u001.html
    interests report out/profiles.jsonl --all --errors out/profiles.errors.jsonl -o report.md
    """
    import json

    from interests.errors import ConfigError
    from interests.profile.store import read_profiles
    from interests.report import render_report, write_report

    users = user_list(user)
    if users and all_users:
        raise click.UsageError("give --user or --all, not both")
    to_stdout = str(output) == "-"
    if to_stdout and fmt is None:
        raise click.UsageError("-o - writes to standard output: give --format html or --format md")
    if to_stdout and as_json:
        raise click.UsageError("-o - writes the report to standard output: --json goes with a report file")
    profs = read_profiles(profiles)
    if not profs:
        raise ConfigError(
            f"{profiles} holds no profiles: give the profiles.jsonl written by `interests extract`"
        )
    if errors is None:
        from interests.profile.extract import sibling_path

        default_errors = sibling_path(profiles, "errors")
        errors = default_errors if default_errors.is_file() else None
    cat: object = None
    if catalog is not None:
        from interests.ingest import read_catalog

        cat = read_catalog(catalog, mapping=catalog_mapping)
    parsed: object = None
    if logs:
        from interests.ingest import read_logs
        from interests.profile.privacy import hashed_profiles

        ids = users or [p.user_id for p in profs]
        parsed = read_logs(
            [str(p) for p in logs],
            mapping=mapping,
            catalog=cat,  # type: ignore[arg-type]
            strict=strict,
            strict_catalog=strict_catalog,
            tz=tz,
            max_events_per_user=max_events_per_user,
            users=None if hashed_profiles(ids) else set(ids),
            dedup=not keep_duplicates,
        )
    options = dict(
        user=users,
        all_users=all_users,
        logs=parsed,
        catalog=cat,
        taxonomy=taxonomy,
        model=model,
        k=k,
        errors=errors,
        quarantine=quarantine,
        template_dir=template_dir,
        title=title,
        max_sections=sections,
    )
    if to_stdout:
        click.echo(render_report(profs, format=fmt, **options), nl=False)  # type: ignore[arg-type]
        return
    path = write_report(output, profs, format=fmt, **options)  # type: ignore[arg-type]
    note(f"wrote {path}")
    if as_json:
        shown = len(users) if users else len(profs)
        kind = path.suffix.lstrip(".") if fmt is None else fmt
        click.echo(json.dumps({"output": str(path), "format": kind, "users": shown, "profiles": len(profs)}))
