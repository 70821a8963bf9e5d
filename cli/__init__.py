"""The ``interests`` command line: a click group of thin wrappers over the SDK.

Each command lives in its own module and is imported only when it runs, so
``interests --help`` stays instant (no torch, no vLLM).
"""

from __future__ import annotations

import importlib
import logging
import os

import click

from interests import __version__

# command name -> (module, attribute, one-line help shown by ``interests --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "extract": (
        "interests.cli.extract",
        "extract",
        "Write a hierarchical interest profile for every user in log files.",
    ),
    "check": (
        "interests.cli.check",
        "check",
        "Read and map logs as extract would, without the engine; say what was found.",
    ),
    "update": (
        "interests.cli.update",
        "update",
        "Bring profiles up to date with new events (the model only where words are needed).",
    ),
    "serve": ("interests.cli.serve", "serve", "Start a vLLM OpenAI-compatible server for extraction."),
    "schema": ("interests.cli.misc", "schema", "Print the JSON Schema of a profile."),
    "models": ("interests.cli.misc", "models", "List and prepare the embedded models."),
    "taxonomy": ("interests.cli.taxonomy", "taxonomy", "Build, show and apply the shared interest taxonomy."),
    "train": ("interests.cli.recsys", "train", "Train the two-tower recommender from profiles."),
    "recommend": ("interests.cli.recsys", "recommend", "Recommend items for users, with reasons."),
    "evaluate": ("interests.cli.recsys", "evaluate", "Evaluate against EASE, ItemKNN and popularity."),
    "api": ("interests.cli.api", "api", "Serve recommendations, profiles and event fold-in over HTTP."),
    "report": ("interests.cli.report", "report", "Write HTML or Markdown profile reports."),
    "forget": (
        "interests.cli.forget",
        "forget",
        "Remove users from every profile, model and file under a folder.",
    ),
    "profile": (
        "interests.cli.profile",
        "profile",
        "Print a user's profile, or the version that held at a date (--at).",
    ),
    "context": (
        "interests.cli.context",
        "context",
        "Print a user's profile as context for another LLM, within a token budget.",
    ),
}


def with_envvars(command: click.Command, prefix: str) -> None:
    """Give every option without one an environment variable named after it.

    ``interests extract --batch-size`` reads ``INTERESTS_EXTRACT_BATCH_SIZE``, ``interests taxonomy
    build --domains`` reads ``INTERESTS_TAXONOMY_BUILD_DOMAINS``: the option's first long name, not the Python
    parameter's (which click's ``auto_envvar_prefix`` would use). Options that name their own
    variable (``--api-key``: ``INTERESTS_API_KEY``) keep it.
    """
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar is None:
            long = next((o for o in param.opts if o.startswith("--")), None)
            if long:
                param.envvar = f"{prefix}_{long[2:].replace('-', '_').upper()}"
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            with_envvars(sub, f"{prefix}_{name.upper().replace('-', '_')}")


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        try:
            command = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("interests"):
                return None
            raise
        with_envvars(command, f"INTERESTS_{cmd_name.upper()}")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="interests")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="INTERESTS_VERBOSE",
    help="More detail on stderr: debug lines, and vLLM's own INFO log lines (hidden by default).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="INTERESTS_QUIET",
    help="Only warnings and errors on stderr (no progress or summary lines); results still go to stdout.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Hierarchical interest profiles from interaction logs, written by an open LLM.

    Start with `interests extract LOGS... -o profiles.jsonl`. Every option can also be set
    with an environment variable INTERESTS_<COMMAND>_<OPTION> (docs/cli.md).
    """
    if verbose and quiet:
        raise click.UsageError("give -v or -q, not both")
    configure_logging(verbose=verbose, quiet=quiet)
    ctx.obj = {"quiet": quiet, "verbose": verbose}
    if not verbose:  # before any command imports vLLM; a VLLM_LOGGING_LEVEL the user set wins
        from interests.llm.cpu_env import quiet_vllm_logging

        quiet_vllm_logging(os.environ)


class CliHandler(logging.StreamHandler):
    """The stderr handler :func:`configure_logging` installs (and replaces on a second call)."""


def configure_logging(*, verbose: bool = False, quiet: bool = False) -> None:
    """Log lines of the toolkit on stderr: INFO by default, DEBUG with -v, WARNING with -q."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("interests")
    logger.setLevel(level)
    for old in [h for h in logger.handlers if isinstance(h, CliHandler)]:
        logger.removeHandler(old)  # a second call (tests, embedding) writes to the stderr of now
    handler = CliHandler()  # sys.stderr at the time of the call
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt, "%H:%M:%S"))
    logger.addHandler(handler)
    logger.propagate = False


def main() -> None:
    cli()


__all__ = ["cli", "main"]
