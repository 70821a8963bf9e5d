"""``interests context``: a user's profile as context for another LLM, within a token budget."""

from __future__ import annotations

from pathlib import Path

import click

from .common import sdk_command, user_list


@click.command()
@click.argument("users", nargs=-1, required=True, metavar="USER...")
@click.option(
    "--profiles",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default="out/profiles.jsonl",
    show_default=True,
    help="profiles.jsonl to read the users' profiles from.",
)
@click.option(
    "--tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Token budget per user, by the tokenizer's count: whole lower-priority lines are dropped to fit.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text or markdown (through the template), or compact JSON (one line per user).",
)
@click.option(
    "--tokenizer",
    default=None,
    metavar="MODEL_OR_DIR",
    help="Count tokens with this embedded model's tokenizer or a local model/tokenizer folder "
    "[default: the embedded model's].",
)
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A Jinja template that replaces prompts/context.j2 (text and markdown).",
)
@sdk_command
def context(
    users: tuple[str, ...],
    profiles: Path,
    tokens: int,
    fmt: str,
    tokenizer: str | None,
    template: Path | None,
) -> None:
    """Print USER's profile as context for another LLM's prompt, within --tokens.

    Lines go by priority (the header, domains by weight then recency, topics,
    the summary, the activity rhythm) and carry share, evidence count, trend,
    rating and confidence. The header and the top domain are always there:
    when even they exceed --tokens, exit 1 with the tokens they need. Several
    users are separated by a blank line (JSON: one line each).

    \b
    interests context u001 --profiles out/profiles.jsonl --tokens 128
    interests context u001 u002 --profiles out/profiles.jsonl --tokens 512 --format markdown
    """
    from interests.errors import ConfigError
    from interests.llm.tokens import TextTokens
    from interests.profile.context import render_context
    from interests.profile.store import iter_jsonl

    wanted = user_list(users) or []
    found = {d["user_id"]: d for d in iter_jsonl(profiles) if d.get("user_id") in set(wanted)}
    missing = [u for u in wanted if u not in found]
    if missing:
        raise ConfigError(f"no profile for user {', '.join(map(repr, missing))} in {profiles}")
    count = TextTokens(tokenizer)
    texts = [
        render_context(found[u], tokens, format=fmt, tokenizer=count, template=template).text for u in wanted
    ]
    click.echo(("\n" if fmt == "json" else "\n\n").join(texts))
