"""Options and error handling shared by the commands."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class MissingInput(click.ClickException):
    """A missing input file or folder: exit code 2, as click's own ``exists=True`` checks."""

    exit_code = 2


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn the SDK's expected errors into one-line ``click`` errors that say how to fix them."""
    from interests.errors import InputNotFoundError, InterestsError

    try:
        yield
    except InputNotFoundError as exc:  # the exit code of click's own path checks (docs/cli.md)
        raise MissingInput(str(exc)) from exc
    except InterestsError as exc:
        raise click.ClickException(str(exc)) from exc
    except FileNotFoundError as exc:
        raise MissingInput(f"file not found: {exc.filename or exc}") from exc
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through sigterm_as_interrupt
        click.echo("\ninterrupted: finished work is saved; the same command resumes it", err=True)
        raise SystemExit(130) from None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` while the command runs, so that ``finally`` blocks run.

    Without it a terminated command dies at once and an in-process vLLM engine
    it started can outlive it. Finished batches are already on disk; the
    re-run resumes. The previous handler is restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def quiet() -> bool:
    """``interests -q``: status lines are not printed (warnings, errors and results still are)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and isinstance(root.obj, dict) and root.obj.get("quiet"))


def note(message: str) -> None:
    """A status line on stderr (what was read, progress, where results went), unless ``-q``."""
    if not quiet():
        click.echo(message, err=True)


def sdk_command(func: F) -> F:
    """Decorator: run a command body under :func:`friendly_errors` with SIGTERM handled like Ctrl-C."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt(), friendly_errors():
                out = func(*args, **kwargs)
                sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
                return out
        except BrokenPipeError:  # `interests recommend ... | head`: stop quietly, as Unix tools do
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(141) from None  # 128 + SIGPIPE, what a shell shows for `yes | head`

    return wrapper  # type: ignore[return-value]


def engine_options(func: F) -> F:
    """Options of the vLLM engine shared by ``serve`` and in-process ``extract``."""
    func = click.option(
        "--dtype",
        type=click.Choice(["auto", "bfloat16", "float32", "float16"]),
        default=None,
        help="Compute dtype of the model [default: bfloat16 where the CPU has avx512_bf16/amx, "
        "else float32; vLLM's choice on a GPU].",
    )(func)
    func = click.option(
        "--enforce-eager/--no-enforce-eager",
        "enforce_eager",
        default=None,
        help="Skip CUDA-graph capture [default: eager on the CPU, CUDA graphs on a GPU].",
    )(func)
    return click.option(
        "--tensor-parallel-size",
        "-tp",
        type=int,
        default=1,
        show_default=True,
        help="GPUs per model (GPU only).",
    )(func)


def model_option(func: F) -> F:
    return click.option(
        "--model",
        default=None,
        help="Embedded model name (default smollm2-135m), a model folder, or a model name vLLM can load.",
    )(func)


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply option decorators so that ``--help`` lists them in the order given."""

    def apply(func: F) -> F:
        for d in reversed(decorators):
            func = d(func)
        return func

    return apply


_CATALOG_OPTIONS = (
    click.option(
        "--catalog", type=click.Path(), help="Item catalogue (CSV/TSV/JSON Lines/Parquet, gzip ok)."
    ),
    click.option(
        "--map",
        "mapping",
        help="Column mapping, e.g. user=userId,item=movieId,time=timestamp,rating=rating,text=tag.",
    ),
    click.option(
        "--catalog-map", "catalog_mapping", help="Catalogue column mapping, e.g. item=asin,title=title."
    ),
)
_READ_OPTIONS = (
    click.option(
        "--strict", is_flag=True, help="Stop at the first bad input row instead of quarantining it."
    ),
    click.option(
        "--strict-catalog", is_flag=True, help="Quarantine events whose item is not in the catalogue."
    ),
    click.option(
        "--max-events-per-user", type=int, help="Keep only each user's most recent N events in memory."
    ),
    click.option(
        "--keep-duplicates",
        is_flag=True,
        help="Keep exact duplicate events instead of counting them once (saves the memory of the check).",
    ),
    click.option(
        "--tz",
        default="UTC",
        show_default=True,
        help="Time zone for naive timestamps and for hour/weekday rhythms.",
    ),
)
_QUARANTINE_OPTION = click.option(
    "--quarantine",
    type=click.Path(dir_okay=False),
    help="Bad input rows [default: <output>.quarantine.jsonl].",
)

#: options of every command that reads interaction logs (the LOGS argument is the command's own)
log_options = _stack(*_CATALOG_OPTIONS, _QUARANTINE_OPTION, *_READ_OPTIONS)

#: :data:`log_options` without ``--quarantine``, for a command whose ``--quarantine`` is an input (``report``)
log_read_options = _stack(*_CATALOG_OPTIONS, *_READ_OPTIONS)


def logs_arguments(func: F) -> F:
    """LOGS as arguments (files, folders, ``-``) or as repeated ``--logs``, then the :data:`log_options`."""
    func = log_options(func)
    func = click.option(
        "--logs",
        "logs_option",
        multiple=True,
        metavar="PATH",
        help="Log files or folders, as an option (repeatable; the same as giving them as arguments).",
    )(func)
    return click.argument("logs", nargs=-1)(func)


def all_logs(logs: tuple[str, ...], logs_option: tuple[str, ...]) -> tuple[str, ...]:
    """The logs given as arguments and as ``--logs``; a usage error when there are none."""
    paths = (*logs, *logs_option)
    if not paths:
        raise click.UsageError("give the interaction logs: files, folders or - (as arguments or --logs)")
    return paths


def read_logs_for(
    logs: tuple[str, ...],
    output: str,
    *,
    catalog: str | None,
    mapping: str | None,
    catalog_mapping: str | None,
    quarantine: str | None,
    strict: bool,
    strict_catalog: bool,
    max_events_per_user: int | None,
    keep_duplicates: bool,
    tz: str,
    users: list[str] | None = None,
    partitions: int | None = None,
) -> Any:
    """Read LOGS with the :func:`log_options`; print what was read (and quarantined) on stderr.

    With ``partitions``, the events are spilled to that many per-user partitions in
    ``<output>.parts/`` (:func:`interests.ingest.partition_logs`) instead of held in memory.
    """
    from pathlib import Path

    from interests.ingest import partition_logs, read_logs
    from interests.profile.extract import sibling_path

    quarantine_path = Path(quarantine) if quarantine else sibling_path(output, "quarantine")
    read: Any = read_logs
    if partitions is not None:
        folder = sibling_path(output, "parts", "")

        def read(paths: list[str], **kwargs: Any) -> Any:
            return partition_logs(paths, folder, parts=partitions, **kwargs)

    parsed = read(
        list(logs),
        mapping=mapping,
        catalog=catalog,
        catalog_mapping=catalog_mapping,
        strict=strict,
        strict_catalog=strict_catalog,
        quarantine=quarantine_path,
        tz=tz,
        max_events_per_user=max_events_per_user,
        users=users,
        dedup=not keep_duplicates,
    )
    rep = parsed.report
    note(
        f"read {rep.rows_read} rows from {len(rep.files)} file(s): {rep.rows_used} used, "
        + (
            f"{rep.duplicates} duplicates, "
            if partitions is None
            else f"spilled to {partitions} partitions in {folder} (duplicates are counted there), "
        )
        + f"{rep.rows_quarantined} quarantined"
        + (f" -> {quarantine_path}" if rep.rows_quarantined else "")
        + f"; {rep.users} users, {rep.items} items"
    )
    if not rep.users:
        raise click.ClickException(
            "no usable events in the logs: "
            + why_no_events(logs, rep, quarantine_path, users)
            + (
                f"; is every column named in --map {mapping} in the logs?"
                if mapping and set(rep.by_reason) & {"missing user", "missing item"}
                else ""
            )
        )
    return parsed


def why_no_events(logs: tuple[str, ...], rep: Any, quarantine: Any, users: list[str] | None) -> str:
    """What is wrong with logs that gave no event: every row quarantined, or each file empty,
    not text, or without rows (the quarantine file is named only when it holds rows)."""
    if rep.rows_quarantined:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(rep.by_reason.items(), key=lambda kv: -kv[1]))
        return f"all {rep.rows_quarantined} rows were quarantined ({reasons}); see {quarantine}"
    if users and rep.rows_filtered:
        return f"none of the {rep.rows_filtered} rows belong to --user {','.join(users[:5])}"
    if rep.skipped_files and not rep.files:
        first, why = next(iter(rep.skipped_files.items()))
        return f"every file was skipped ({first}: {why}); give log files (CSV, TSV, JSON Lines, Parquet)"
    return "; ".join(describe_empty(p) for p in logs)


def describe_empty(path: str) -> str:
    """Why ``path`` gave no row: ``x.csv is empty``, ``x.csv is not text (binary data)``, ..."""
    import codecs
    from pathlib import Path

    if path == "-":
        return "standard input held no rows"
    p = Path(path)
    if p.is_dir():
        return f"{p} holds no log rows"
    with p.open("rb") as f:
        head = f.read(8192)
    if not head.strip():
        return f"{p} is empty: give a log with a header and rows"
    if head[:2] in (b"\x1f\x8b", b"BZ") or head[:4] == b"PAR1" or head[:6] == b"\xfd7zXZ\x00":
        return f"{p} has no rows"
    try:
        binary = b"\0" in head and head[:2] not in (b"\xff\xfe", b"\xfe\xff")
        if not binary:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        binary = True
    if binary:
        return (
            f"{p} is not text (binary data): give CSV, TSV, JSON Lines or Parquet logs (plain or gzip/bz2/xz)"
        )
    return f"{p} has a header but no rows"


#: options choosing the LLM that writes the words: the in-process engine or a server
backend_options = _stack(
    model_option,
    engine_options,
    click.option(
        "--server",
        help="Base URL of an OpenAI-compatible server instead of in-process vLLM, used as given "
        "(http://127.0.0.1:8000/v1, https://host/openai/v1); a bare http://host:port gets /v1.",
    ),
    click.option(
        "--api-key",
        envvar="INTERESTS_API_KEY",
        default=None,
        help="API key for --server [env: INTERESTS_API_KEY].",
    ),
    click.option(
        "--served-model",
        help="Model name the server serves [default: the first model the server lists]; "
        "with it and --max-model-len the server's model list is not asked for.",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=8,
        show_default=True,
        help="Requests in flight with --server.",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=300.0,
        show_default=True,
        help="Per-request timeout with --server (s).",
    ),
    click.option(
        "--max-model-len",
        type=int,
        default=None,
        help="Context length [default: 4096 in-process; what the server reports with --server].",
    ),
)


_LOG_OPTIONS = (
    "catalog",
    "mapping",
    "catalog_mapping",
    "quarantine",
    "strict",
    "strict_catalog",
    "max_events_per_user",
    "keep_duplicates",
    "tz",
)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of :func:`log_options` and of :func:`backend_options`, apart."""
    logs = {k: v for k, v in options.items() if k in _LOG_OPTIONS}
    return logs, {k: v for k, v in options.items() if k not in _LOG_OPTIONS}


def _ray_address(value: str | None) -> str | None:
    """Checked while parsing, before a log file swallowed by ``--ray LOGS`` turns into "missing LOGS"."""
    if value is None:
        return None
    from interests.errors import ConfigError
    from interests.scale.ray_connect import check_address

    try:
        return check_address(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc


def ray_option(what: str) -> Callable[[F], F]:
    """``--ray [ADDRESS]``: run ``what`` on a Ray cluster (alone: a new local cluster)."""
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS]",
        callback=lambda ctx, param, value: _ray_address(value),
        help=f"{what}: alone, a new local cluster; or auto, ray://HOST:10001, HOST:6379 "
        "(write --ray=ADDRESS, or put it after LOGS). Needs interests[ray].",
    )


def weight_shift_option(when: str = "") -> Callable[[F], F]:
    """``--weight-shift``: the update rule's share of events that earns a domain new words."""
    return click.option(
        "--weight-shift",
        type=click.FloatRange(min=0, max=1),
        default=0.2,
        show_default=True,
        help=f"{when}{'a' if when else 'A'} domain whose share of the events moves this much gets new words.",
    )


def half_life_option(func: F) -> F:
    return click.option(
        "--half-life",
        "half_life_days",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Decay older events in the node weights with this half-life in days [default: no decay].",
    )(func)


def errors_option(func: F) -> F:
    return click.option(
        "--errors",
        type=click.Path(dir_okay=False),
        help="Error records [default: <profiles file>.errors.jsonl, e.g. out/profiles.errors.jsonl].",
    )(func)


def users_option(func: F) -> F:
    return click.option(
        "--user",
        "--users",
        "user",
        multiple=True,
        metavar="USER_ID",
        help="Only this user (repeat, or separate ids with commas, for several).",
    )(func)


def user_list(values: tuple[str, ...] | list[str] | None) -> list[str] | None:
    """``--user a --user b,c`` -> ``["a", "b", "c"]``; ``None`` when no user was given."""
    out = [u.strip() for v in values or () for u in v.split(",") if u.strip()]
    return out or None


def batch_size_option(func: F) -> F:
    return click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=32,
        show_default=True,
        help="Users per engine call (and per atomic write).",
    )(func)


def exit_on_errors(n_users: int, errors_path: object) -> None:
    """Exit with code 1 when any user ended in an error record (docs/cli.md, "Exit codes")."""
    if n_users:
        s = "" if n_users == 1 else "s"
        click.echo(f"{n_users} user{s} ended in an error record (see {errors_path}): exit code 1", err=True)
        click.get_current_context().exit(1)
