"""``interests extract``: log files in, one profile or error record per user out."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from interests.profile.prompting import DEFAULT_MAX_ITEMS

from .common import (
    backend_options,
    batch_size_option,
    errors_option,
    exit_on_errors,
    half_life_option,
    log_options,
    note,
    quiet,
    ray_option,
    read_logs_for,
    sdk_command,
    split_options,
    user_list,
    users_option,
)


def _bar_shown() -> bool:
    """The rich bar is for terminals (or INTERESTS_PROGRESS=1); elsewhere plain lines go to stderr."""
    return not quiet() and (sys.stderr.isatty() or os.environ.get("INTERESTS_PROGRESS") == "1")


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


def _backend_spec(opts: dict[str, Any]) -> Any:
    """The backend the options describe: the in-process engine, or a client of the --server URL(s)
    (comma-separated: with --ray, actor ``i`` takes the ``i``-th)."""
    from interests.llm.spec import BackendSpec

    return BackendSpec.of(**opts)


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
@log_options
@errors_option
@users_option
@click.option("--limit", type=click.IntRange(min=0), help="Only the first N users of the logs.")
@backend_options
@batch_size_option
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
    "--prompt-dir",
    type=click.Path(file_okay=False),
    help="Folder with system.j2/user.j2 overriding the built-in prompts.",
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
@half_life_option
@click.option(
    "--hash-user-ids",
    is_flag=True,
    help="Write keyed pseudonyms (h_ + HMAC-SHA256) instead of user ids; key from $INTERESTS_HASH_KEY.",
)
@ray_option("Extract on a Ray cluster, one engine per actor")
@click.option(
    "--actors",
    type=click.IntRange(min=1),
    default=None,
    help="Ray actors, each with its own engine (or one of the comma-separated --server URLs) "
    "[default: as many as the cluster holds].",
)
@click.option(
    "--actor-cpus",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="CPUs each Ray actor asks for.",
)
@click.option(
    "--actor-gpus",
    type=click.FloatRange(min=0),
    default=None,
    help="GPUs each Ray actor asks for [default: --tensor-parallel-size where the cluster has GPUs, else 0].",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    help="Logs larger than memory: spill the events to N per-user partitions in <output>.parts/ and "
    "extract one partition at a time (the same profiles as a run in memory); with --ray, the "
    "partitions go one after another to the same actors.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's counts as JSON on stdout.")
@sdk_command
def extract(
    logs: tuple[str, ...],
    output: str,
    errors: str | None,
    user: tuple[str, ...],
    limit: int | None,
    batch_size: int,
    max_new_tokens: int,
    max_items: int,
    prompt_dir: str | None,
    redact: bool,
    retry_errors: bool,
    structure: str,
    taxonomy_dir: str | None,
    hash_user_ids: bool,
    as_json: bool,
    half_life_days: float | None,
    ray_address: str | None,
    actors: int | None,
    actor_cpus: float,
    actor_gpus: float | None,
    partitions: int | None,
    **options: Any,
) -> None:
    """Write a hierarchical interest profile for every user in LOGS (files, folders or - for stdin)."""
    from interests.pipeline import run_extraction
    from interests.profile.job import ExtractionJob
    from interests.profile.privacy import key_from_env

    hash_key = key_from_env() if hash_user_ids else None  # fail before reading anything
    if taxonomy_dir and structure != "data":
        raise click.UsageError("--taxonomy groups items for --structure data only")
    if ray_address is None and (actors is not None or actor_gpus is not None or actor_cpus != 1.0):
        raise click.UsageError("--actors, --actor-cpus and --actor-gpus go with --ray")
    cluster = None
    if ray_address is not None:
        from interests.scale.ray_connect import RayCluster, require_ray

        require_ray()  # fail before reading the logs
        cluster = RayCluster(ray_address, actors=actors, actor_cpus=actor_cpus, actor_gpus=actor_gpus)
    selected = user_list(user)
    log_opts, backend_opts = split_options(options)
    spec = _backend_spec(backend_opts)
    taxonomy = None
    if taxonomy_dir:
        from interests.taxonomy import Taxonomy

        taxonomy = Taxonomy.load(taxonomy_dir)
    job = ExtractionJob(
        output=Path(output),
        errors=None if errors is None else Path(errors),
        batch_size=batch_size,
        limit=limit,
        max_new_tokens=max_new_tokens,
        max_items=max_items,
        prompt_dir=None if prompt_dir is None else Path(prompt_dir),
        tz=log_opts["tz"],
        redact=redact,
        retry_errors=retry_errors,
        structure=structure,  # type: ignore[arg-type]
        taxonomy=taxonomy,
        hash_key=hash_key,
        half_life_days=half_life_days,
    )  # checked here, before the logs are read
    parsed = read_logs_for(logs, output, users=selected, partitions=partitions, **log_opts)
    n = parsed.report.users if limit is None else min(limit, parsed.report.users)
    plain_progress = not _bar_shown()
    with _progress(n) as bar:
        task = bar.add_task("extract", total=n)

        def advance(res: Any, k: int) -> None:
            done = res.users_skipped + res.attempted
            bar.update(task, completed=done)
            if plain_progress:
                note(progress_line(done, n, res.errors, res.attempted, res.seconds))

        try:
            res = run_extraction(parsed, job, spec, ray=cluster, on_batch=advance)
        finally:
            if partitions is not None:
                shutil.rmtree(parsed.directory, ignore_errors=True)
    tok_s = res.output_tokens / res.engine_seconds if res.engine_seconds else 0.0
    if ray_address is not None:
        note(
            f"ray: {getattr(res, 'actors', 0)} actors, partitions of {getattr(res, 'partition_sizes', [])} "
            f"users, {getattr(res, 'actor_failures', 0)} batches sent again after an actor died"
        )
    note(
        f"users: {res.users_selected} selected, {res.users_skipped} already done, {res.profiles} profiles, "
        f"{res.errors} errors ({res.valid_first_try} valid on the first try, {res.retries} retries, "
        f"{res.truncated_prompts} truncated prompts)\n"
        f"tokens: {res.prompt_tokens} prompt, {res.output_tokens} output ({tok_s:.1f} output tokens/s); "
        f"time {res.seconds:.1f}s; redacted {sum(res.redactions.values())} spans\n"
        f"profiles -> {res.output}" + (f"\nerrors -> {res.errors_path}" if res.errors else "")
    )
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    if res.attempted == 0 and res.users_skipped == 0:
        raise click.ClickException("no user could be processed")
    if res.profiles == 0 and res.users_skipped == 0:
        raise click.ClickException(f"every user failed; see {res.errors_path}")
    exit_on_errors(res.users_with_errors, res.errors_path)
