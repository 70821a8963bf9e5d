"""``interests check``: read and map logs as ``extract`` would, without the engine, and say what it found."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import log_options, read_logs_for, sdk_command, split_options, user_list, users_option


@click.command()
@click.argument("logs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="out/profiles.jsonl",
    show_default=True,
    help="The profiles file extract would write (the quarantine file goes next to it).",
)
@log_options
@users_option
@click.option("--json", "as_json", is_flag=True, help="Print what was found as JSON on stdout.")
@sdk_command
def check(logs: tuple[str, ...], output: str, user: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Read LOGS as `interests extract` would, without the engine: users, events, items,
    quarantined rows by reason, catalogue coverage.

    \b
    interests check logs/ratings.csv --catalog logs/movies.csv --map user=userId,item=movieId
    """
    from pathlib import Path

    from interests.profile.extract import sibling_path

    log_opts, _ = split_options(options)
    parsed = read_logs_for(logs, output, users=user_list(user), **log_opts)
    rep = parsed.report
    quarantine = (
        Path(log_opts["quarantine"]) if log_opts.get("quarantine") else sibling_path(output, "quarantine")
    )
    logged = {e.item_id for h in parsed.histories.values() for e in h.events}
    cat = parsed.catalog
    catalog = None
    if cat is not None:
        known = sum(1 for i in logged if i in cat)
        catalog = {
            "path": log_opts["catalog"],
            "items": len(cat),
            "logged_items_in_catalog": known,
            "logged_items": len(logged),
            "coverage": round(known / len(logged), 4) if logged else 0.0,
        }
    result = {
        "files": rep.files,
        "skipped_files": rep.skipped_files,
        "rows_read": rep.rows_read,
        "rows_used": rep.rows_used,
        "duplicates": rep.duplicates,
        "rows_filtered": rep.rows_filtered,
        "rows_quarantined": rep.rows_quarantined,
        "quarantined_by_reason": rep.by_reason,
        "quarantine_file": str(quarantine) if rep.rows_quarantined else None,
        "users": len(parsed.histories),
        "events": parsed.n_events,
        "events_dropped": rep.events_dropped,
        "items": len(logged),
        "catalog": catalog,
    }
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    lines = [
        f"files: {len(rep.files)} read"
        + (f", {len(rep.skipped_files)} skipped" if rep.skipped_files else ""),
        f"rows: {rep.rows_read:,} read, {rep.rows_used:,} used, {rep.duplicates:,} duplicates, "
        f"{rep.rows_quarantined:,} quarantined"
        + (f", {rep.rows_filtered:,} of other users" if rep.rows_filtered else ""),
        f"users: {len(parsed.histories):,}; events: {parsed.n_events:,}; items: {len(logged):,}",
    ]
    if rep.rows_quarantined:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(rep.by_reason.items(), key=lambda kv: -kv[1]))
        lines.append(f"quarantined by reason: {reasons} -> {quarantine}")
    for name, why in rep.skipped_files.items():
        lines.append(f"skipped {name}: {why}")
    if catalog is not None:
        lines.append(
            f"catalogue: {catalog['items']:,} items; {catalog['logged_items_in_catalog']:,} of the "
            f"{catalog['logged_items']:,} logged items are in it ({100 * catalog['coverage']:.1f}%)"
        )
    click.echo("\n".join(lines))


__all__ = ["check"]
