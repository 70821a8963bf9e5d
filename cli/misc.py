"""``interests schema`` and ``interests models``."""

from __future__ import annotations

import json

import click

from .common import sdk_command


@click.command()
@click.option(
    "--draft", is_flag=True, help="Print the schema of the LLM's draft instead (with example item ids)."
)
@click.option(
    "--structure",
    type=click.Choice(["data", "model"]),
    default="data",
    show_default=True,
    help="With --draft: the draft of a computed skeleton (two groups) or of free grouping.",
)
def schema(draft: bool, structure: str) -> None:
    """Print the JSON Schema of a profile (one line of profiles.jsonl)."""
    if draft:
        from interests.profile.draft import Slot, draft_model, skeleton_model

        model = (
            skeleton_model(
                [[Slot(["ITEM_1", "ITEM_2"], ("brand: ACME",), with_text=True)], [Slot(["ITEM_3"])]]
            )
            if structure == "data"
            else draft_model(["ITEM_1", "ITEM_2"])
        )
        click.echo(json.dumps(model.model_json_schema(), indent=2))
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
    from interests.llm.weights import list_models

    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "prepared" if r["prepared"] else ("installed" if r["installed"] else "not installed")
        default = " (default)" if r["default"] else ""
        where = r["path"] if r["installed"] else f"install: {r['install']}"
        click.echo(f"{r['name']}{default}: {state} - {r['description']}\n    {where}")


@models.command()
@click.argument("name", default="smollm2-135m")
@click.option("--force", is_flag=True, help="Convert again even if prepared.")
@sdk_command
def prepare(name: str, force: bool) -> None:
    """Convert embedded model NAME once into a folder vLLM can load."""
    from interests.llm.weights import prepare_model

    click.echo(str(prepare_model(name, force=force)))
