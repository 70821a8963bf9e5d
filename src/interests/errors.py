"""The exception hierarchy: every expected failure is an :class:`InterestsError`
whose message says what went wrong and how to fix it."""

from __future__ import annotations


class InterestsError(Exception):
    """Base class for errors the CLI reports as one line."""


class ConfigError(InterestsError):
    """Bad options or configuration."""


class InputNotFoundError(ConfigError, FileNotFoundError):
    """An input file or folder that does not exist (the CLI exits 2 for it, as for its own path checks)."""

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.filename = None if path is None else str(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputFormatError(ConfigError, ValueError):
    """An input file that cannot be read as what it should be (binary, not JSON Lines, empty)."""


class BackendError(InterestsError):
    """The LLM backend could not be started or reached."""

    def __init__(self, message: str, *, attempts: int = 0, last_output: str | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_output = last_output


__all__ = ["BackendError", "ConfigError", "InputFormatError", "InputNotFoundError", "InterestsError"]
