"""``interests schema`` and ``interests models``."""

from __future__ import annotations

import json

import click

from .common import sdk_command


@click.command()
@click.option(
    "--draft", is_flag=True, help="Print the schema of the LLM's draft instead (with example item ids)."
)
def schema(draft: bool) -> None:
    """Print the JSON Schema of a profile (one line of profiles.jsonl)."""
    if draft:
        from interests.draft import draft_model

        click.echo(json.dumps(draft_model(["ITEM_1", "ITEM_2"]).model_json_schema(), indent=2))
        return
    from interests.schema import profile_json_schema

    click.echo(json.dumps(profile_json_schema(), indent=2))


@click.group()
def models() -> None:
    """List and prepare the embedded models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """Show the embedded models and whether each is prepared."""
    from interests.models import list_models

    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "prepared" if r["prepared"] else ("installed" if r["installed"] else "not installed")
        default = " (default)" if r["default"] else ""
        click.echo(f"{r['name']}{default}: {state} - {r['description']}\n    {r['path']}")


@models.command()
@click.argument("name", default="smollm2-135m")
@click.option("--force", is_flag=True, help="Convert again even if prepared.")
@sdk_command
def prepare(name: str, force: bool) -> None:
    """Convert embedded model NAME once into a folder vLLM can load."""
    from interests.models import prepare_model

    click.echo(str(prepare_model(name, force=force)))
