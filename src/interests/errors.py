"""The exception hierarchy: every expected failure is an :class:`InterestsError`
whose message says what went wrong and how to fix it."""

from __future__ import annotations


class InterestsError(Exception):
    """Base class for errors the CLI reports as one line."""


class ConfigError(InterestsError):
    """Bad options or configuration."""


class BackendError(InterestsError):
    """The LLM backend could not be started or reached."""

    def __init__(self, message: str, *, attempts: int = 0, last_output: str | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_output = last_output


__all__ = ["BackendError", "ConfigError", "InterestsError"]
