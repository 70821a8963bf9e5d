"""``interests report``: HTML or Markdown profile reports."""

from __future__ import annotations

from pathlib import Path

import click

from .common import note, sdk_command

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("report")
@click.argument("profiles", type=_FILE)
@click.option("--user", "users", multiple=True, metavar="USER_ID", help="Report on this user (repeatable).")
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
@click.option("--catalog", type=_FILE, default=None, help="Item catalogue (titles, categories).")
@click.option("--errors", type=_FILE, default=None, help="Error records of the run (JSON Lines).")
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
@sdk_command
def report(
    profiles: Path,
    users: tuple[str, ...],
    all_users: bool,
    taxonomy: Path | None,
    model: Path | None,
    k: int,
    logs: tuple[Path, ...],
    catalog: Path | None,
    errors: Path | None,
    quarantine: Path | None,
    output: Path,
    fmt: str | None,
    template_dir: Path | None,
    title: str | None,
    sections: int,
) -> None:
    """Write an explainable report of PROFILES (a profiles.jsonl file).

    One user's page with --user USER_ID, or a run index with every user with
    --all. Give the logs and catalogue for evidence rows and review snippets.

    \b
    interests report out/profiles.jsonl --user u001 \\
        --logs examples/logs/events.csv --catalog examples/logs/catalog.jsonl -o u001.html
    interests report out/profiles.jsonl --all --errors out/profiles.errors.jsonl -o report.md
    """
    from interests.report import render_report, write_report

    if users and all_users:
        raise click.UsageError("give --user or --all, not both")
    to_stdout = str(output) == "-"
    if to_stdout and fmt is None:
        raise click.UsageError("-o - writes to standard output: give --format html or --format md")
    options = dict(
        user=list(users) or None,
        all_users=all_users,
        logs=list(logs) or None,
        catalog=catalog,
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
        click.echo(render_report(profiles, format=fmt, **options), nl=False)  # type: ignore[arg-type]
        return
    path = write_report(output, profiles, format=fmt, **options)  # type: ignore[arg-type]
    note(f"wrote {path}")
