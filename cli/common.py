"""Options and error handling shared by the commands."""

from __future__ import annotations

import contextlib
import functools
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


def sdk_command(func: F) -> F:
    """Decorator: run a command body under :func:`friendly_errors`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with friendly_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def model_option(func: F) -> F:
    return click.option(
        "--model",
        default=None,
        help="Embedded model name (default smollm2-135m), a model folder, or a model name vLLM can load.",
    )(func)
