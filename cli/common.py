"""Options and error handling shared by the commands."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn the SDK's expected errors into one-line ``click`` errors that say how to fix them."""
    from interests.errors import InterestsError

    try:
        yield
    except InterestsError as exc:
        raise click.ClickException(str(exc)) from exc
    except FileNotFoundError as exc:
        raise click.ClickException(f"file not found: {exc.filename or exc}") from exc


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


def sdk_command(func: F) -> F:
    """Decorator: run a command body under :func:`friendly_errors` with SIGTERM handled like Ctrl-C."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sigterm_as_interrupt(), friendly_errors():
            return func(*args, **kwargs)

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
