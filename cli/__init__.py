"""The ``interests`` command line: a click group of thin wrappers over the SDK.

Each command lives in its own module and is imported only when it runs, so
``interests --help`` stays instant (no torch, no vLLM).
"""

from __future__ import annotations

import importlib
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
}


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
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="interests")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show vLLM's own INFO log lines (hidden by default: only its warnings and errors).",
)
def cli(verbose: bool) -> None:
    """Hierarchical interest profiles from interaction logs, written by an open LLM.

    Start with `interests extract LOGS... -o profiles.jsonl`.
    """
    if not verbose:  # before any command imports vLLM; a VLLM_LOGGING_LEVEL the user set wins
        from interests.llm.cpu_env import quiet_vllm_logging

        quiet_vllm_logging(os.environ)


def main() -> None:
    cli()


__all__ = ["cli", "main"]
