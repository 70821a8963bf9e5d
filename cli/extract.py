"""``interests extract``: log files in, one profile or error record per user out."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from interests.prompting import DEFAULT_MAX_ITEMS

from .common import engine_options, model_option, sdk_command


def _bar_shown() -> bool:
    """The rich bar is for terminals (or INTERESTS_PROGRESS=1); elsewhere plain lines go to stderr."""
    return sys.stderr.isatty() or os.environ.get("INTERESTS_PROGRESS") == "1"


def _duration(seconds: float) -> str:
    s = round(seconds)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def progress_line(done: int, total: int, errors: int, attempted: int, seconds: float) -> str:
    """``extract: 16/24 users (2 errors), 7.9 users/min, ETA 1m01s``.

    ``done`` counts users attempted in this run plus those skipped as already done; the rate
    (and the ETA of the ``total - done`` left) comes from the ``attempted`` users in ``seconds``.
    """
    line = f"extract: {done}/{total} users ({errors} error{'' if errors == 1 else 's'})"
    if attempted > 0 and seconds > 0:
        eta = max(total - done, 0) * seconds / attempted
        line += f", {attempted * 60 / seconds:.1f} users/min, ETA {_duration(eta)}"
    return line


def _progress(total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("extracting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("users"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
        disable=not _bar_shown(),
    )


@click.command()
@click.argument("logs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="out/profiles.jsonl",
    show_default=True,
    help="Profiles file (JSON Lines); re-running with the same file resumes.",
)
@click.option("--catalog", type=click.Path(), help="Item catalogue (CSV/TSV/JSON Lines/Parquet, gzip ok).")
@click.option(
    "--map",
    "mapping",
    help="Column mapping, e.g. user=userId,item=movieId,time=timestamp,rating=rating,text=tag.",
)
@click.option(
    "--catalog-map", "catalog_mapping", help="Catalogue column mapping, e.g. item=asin,title=title."
)
@click.option(
    "--errors", type=click.Path(dir_okay=False), help="Error records [default: <output>.errors.jsonl]."
)
@click.option(
    "--quarantine",
    type=click.Path(dir_okay=False),
    help="Bad input rows [default: <output>.quarantine.jsonl].",
)
@click.option("--strict", is_flag=True, help="Stop at the first bad input row instead of quarantining it.")
@click.option("--strict-catalog", is_flag=True, help="Quarantine events whose item is not in the catalogue.")
@click.option("--users", "users_", help="Only these user ids (comma-separated).")
@click.option("--limit", type=click.IntRange(min=0), help="Only the first N users of the logs.")
@model_option
@engine_options
@click.option(
    "--server",
    help="Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) "
    "instead of in-process vLLM.",
)
@click.option(
    "--api-key",
    envvar="INTERESTS_API_KEY",
    default=None,
    help="API key for --server [env: INTERESTS_API_KEY].",
)
@click.option("--served-model", help="Model name the server serves [default: asked from the server].")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests in flight with --server.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Per-request timeout with --server (s).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Users per engine call (and per atomic write).",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=16),
    default=768,
    show_default=True,
    help="Output budget of the first try.",
)
@click.option(
    "--max-items",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_ITEMS,
    show_default=True,
    help="Most recent items shown to the model per user.",
)
@click.option(
    "--max-model-len",
    type=int,
    default=None,
    help="Context length [default: 4096 in-process; what the server reports with --server].",
)
@click.option("--max-events-per-user", type=int, help="Keep only each user's most recent N events in memory.")
@click.option(
    "--keep-duplicates",
    is_flag=True,
    help="Keep exact duplicate events instead of counting them once (saves the memory of the check).",
)
@click.option(
    "--prompt-dir",
    type=click.Path(file_okay=False),
    help="Folder with system.j2/user.j2 overriding the built-in prompts.",
)
@click.option(
    "--tz",
    default="UTC",
    show_default=True,
    help="Time zone for naive timestamps and for hour/weekday rhythms.",
)
@click.option(
    "--redact/--no-redact",
    default=True,
    show_default=True,
    help="Remove e-mails, phones, card numbers and URLs with queries from text.",
)
@click.option("--retry-errors", is_flag=True, help="Try again the users that have an error record.")
@click.option(
    "--structure",
    type=click.Choice(["data", "model"]),
    default="data",
    show_default=True,
    help="data: domains and topics computed from the data (categories, --taxonomy or item clusters), "
    "named by the model; model: the model groups the items itself (for strong models).",
)
@click.option(
    "--taxonomy",
    "taxonomy_dir",
    type=click.Path(file_okay=False, exists=True),
    help="A shared taxonomy (interests taxonomy build) to group every user's items by (structure data).",
)
@click.option(
    "--hash-user-ids",
    is_flag=True,
    help="Write keyed pseudonyms (h_ + HMAC-SHA256) instead of user ids; key from $INTERESTS_HASH_KEY.",
)
@sdk_command
def extract(
    logs: tuple[str, ...],
    output: str,
    catalog: str | None,
    mapping: str | None,
    catalog_mapping: str | None,
    errors: str | None,
    quarantine: str | None,
    strict: bool,
    strict_catalog: bool,
    users_: str | None,
    limit: int | None,
    model: str | None,
    tensor_parallel_size: int,
    enforce_eager: bool | None,
    dtype: str | None,
    server: str | None,
    api_key: str | None,
    served_model: str | None,
    concurrency: int,
    timeout: float,
    batch_size: int,
    max_new_tokens: int,
    max_items: int,
    max_model_len: int | None,
    max_events_per_user: int | None,
    keep_duplicates: bool,
    prompt_dir: str | None,
    tz: str,
    redact: bool,
    retry_errors: bool,
    structure: str,
    taxonomy_dir: str | None,
    hash_user_ids: bool,
) -> None:
    """Write a hierarchical interest profile for every user in LOGS (files, folders or - for stdin)."""
    from interests.extract import extract_profiles, sibling_path
    from interests.ingest import read_logs
    from interests.llm.base import Backend
    from interests.privacy import key_from_env

    hash_key = key_from_env() if hash_user_ids else None  # fail before reading anything

    quarantine_path = Path(quarantine) if quarantine else sibling_path(output, "quarantine")
    user_list = [u.strip() for u in users_.split(",")] if users_ else None
    parsed = read_logs(
        list(logs),
        mapping=mapping,
        catalog=catalog,
        catalog_mapping=catalog_mapping,
        strict=strict,
        strict_catalog=strict_catalog,
        quarantine=quarantine_path,
        tz=tz,
        max_events_per_user=max_events_per_user,
        users=user_list,
        dedup=not keep_duplicates,
    )
    rep = parsed.report
    click.echo(
        f"read {rep.rows_read} rows from {len(rep.files)} file(s): {rep.rows_used} used, "
        f"{rep.duplicates} duplicates, {rep.rows_quarantined} quarantined"
        + (f" -> {quarantine_path}" if rep.rows_quarantined else "")
        + f"; {rep.users} users, {rep.items} items",
        err=True,
    )
    if not parsed.histories:
        raise click.ClickException("no usable events in the logs; see the quarantine file for why")
    if taxonomy_dir and structure != "data":
        raise click.UsageError("--taxonomy groups items for --structure data only")
    taxonomy = None
    if taxonomy_dir:
        from interests.taxonomy import Taxonomy

        taxonomy = Taxonomy.load(taxonomy_dir)
    backend: Backend
    if server:
        from interests.llm.server import ServerBackend

        backend = ServerBackend(
            server,
            api_key=api_key,
            model=served_model,
            concurrency=concurrency,
            timeout=timeout,
            max_model_len=max_model_len,
        )
    else:
        from interests.llm.vllm_local import VLLMBackend

        backend = VLLMBackend(
            model,
            max_model_len=max_model_len or 4096,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager,
            dtype=dtype,
        )
    n = len(parsed.histories) if limit is None else min(limit, len(parsed.histories))
    plain_progress = not _bar_shown()
    with _progress(n) as bar:
        task = bar.add_task("extract", total=n)

        def advance(res: Any, k: int) -> None:
            done = res.users_skipped + res.attempted
            bar.update(task, completed=done)
            if plain_progress:
                click.echo(progress_line(done, n, res.errors, res.attempted, res.seconds), err=True)

        try:
            res = extract_profiles(
                parsed,
                output=output,
                errors=errors,
                backend=backend,
                batch_size=batch_size,
                limit=limit,
                max_new_tokens=max_new_tokens,
                max_items=max_items,
                prompt_dir=prompt_dir,
                tz=tz,
                redact=redact,
                retry_errors=retry_errors,
                on_batch=advance,
                structure=structure,  # type: ignore[arg-type]
                taxonomy=taxonomy,
                hash_key=hash_key,
            )
        finally:
            backend.close()
    tok_s = res.output_tokens / res.engine_seconds if res.engine_seconds else 0.0
    click.echo(
        f"users: {res.users_selected} selected, {res.users_skipped} already done, {res.profiles} profiles, "
        f"{res.errors} errors ({res.valid_first_try} valid on the first try, {res.retries} retries, "
        f"{res.truncated_prompts} truncated prompts)\n"
        f"tokens: {res.prompt_tokens} prompt, {res.output_tokens} output ({tok_s:.1f} output tokens/s); "
        f"time {res.seconds:.1f}s; redacted {sum(res.redactions.values())} spans\n"
        f"profiles -> {res.output}" + (f"\nerrors -> {res.errors_path}" if res.errors else ""),
        err=True,
    )
    if res.attempted == 0 and res.users_skipped == 0:
        raise click.ClickException("no user could be processed")
    if res.profiles == 0 and res.users_skipped == 0:
        raise click.ClickException(f"every user failed; see {res.errors_path}")
