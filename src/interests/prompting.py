"""Render a user's history into chat messages, within a token budget.

Templates are package data (``interests/prompts/*.j2``, the top-level
``prompts/`` folder of the repository) rendered by a *sandboxed* Jinja
environment with ``StrictUndefined``. User text is passed as data, never
compiled as a template, so ``{{ 7*7 }}`` in a review stays literal.

The system prompt is the same for every user and comes first, so the
engine's prefix cache reuses it across a batch.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .errors import ConfigError
from .events import Catalog, UserHistory
from .redact import Redactor
from .signals import UserSignals

SYSTEM_TEMPLATE = "system.j2"
USER_TEMPLATE = "user.j2"
TEXT_SNIPPET_CHARS = 160
TITLE_CHARS = 90
MAX_DOMAIN_CHOICES = 24
#: most recent items shown per user. Chosen by measurement (bench/budget.py, docs/benchmarks.md):
#: with the embedded 135M model, 60 items cost 2.4k prompt tokens and 6.5 s a user for no better
#: profile than 30 (1.6k tokens, 4.5 s); 15 was faster still but grounding had to rename more.
DEFAULT_MAX_ITEMS = 30

Messages = list[dict[str, str]]
TokenCounter = Callable[[Messages], int]


def approx_tokens(messages: Messages) -> int:
    """A cheap upper-bound token estimate (about 3 characters a token)."""
    return sum(len(m["content"]) // 3 + 4 for m in messages)


@dataclass
class Prompt:
    """A rendered prompt for one user."""

    user_id: str
    messages: Messages
    item_ids: list[str]  # the items shown, in the order shown: what the model may cite
    categories: list[str]  # categories of the items shown, most frequent first: the L1 names allowed
    with_text: bool
    events_used: int
    events_total: int
    truncated: bool
    tokens: int


class PromptRenderer:
    """Loads the templates once and renders users' prompts."""

    def __init__(self, prompt_dir: str | Path | None = None, *, redactor: Redactor | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if prompt_dir is not None:
            if not Path(prompt_dir).is_dir():
                raise ConfigError(f"--prompt-dir {prompt_dir} is not a folder")
            loaders.append(jinja2.FileSystemLoader(str(prompt_dir)))
        loaders.append(jinja2.FunctionLoader(_package_template))
        self.env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        try:
            self.system = self.env.get_template(SYSTEM_TEMPLATE)
            self.user = self.env.get_template(USER_TEMPLATE)
            # the system prompt takes no variables: it is the prefix every user shares
            self._system_text = self.system.render().strip()
        except jinja2.TemplateError as exc:
            raise ConfigError(
                f"prompt template error: {exc} (system.j2 takes no variables; see docs/prompts.md)"
            ) from exc
        sources = [self.env.loader.get_source(self.env, n)[0] for n in (SYSTEM_TEMPLATE, USER_TEMPLATE)]  # type: ignore[union-attr]
        self.template_hash = hashlib.sha256("\0".join(sources).encode()).hexdigest()[:16]
        self.template_name = "custom" if prompt_dir is not None else "default"
        self.redactor = redactor or Redactor()

    def render(
        self,
        history: UserHistory,
        signals: UserSignals,
        catalog: Catalog | None = None,
        *,
        max_tokens: int = 3000,
        max_items: int = DEFAULT_MAX_ITEMS,
        count_tokens: TokenCounter = approx_tokens,
    ) -> Prompt:
        """Messages for one user: the most recent items that fit ``max_tokens``."""
        rows = _item_rows(history, catalog or Catalog(), self.redactor)
        with_text = any(r["text"] for r in rows)
        keep = min(len(rows), max_items)
        messages = self._messages(history.user_id, signals, rows, keep, with_text)
        tokens = count_tokens(messages)
        if tokens > max_tokens:
            lo, hi = 1, keep - 1  # largest keep whose prompt fits
            while lo <= hi:
                mid = (lo + hi) // 2
                if count_tokens(self._messages(history.user_id, signals, rows, mid, with_text)) <= max_tokens:
                    lo = mid + 1
                else:
                    hi = mid - 1
            keep = max(hi, 1)
            messages = self._messages(history.user_id, signals, rows, keep, with_text)
            tokens = count_tokens(messages)
        shown = rows[len(rows) - keep :]
        events_used = sum(r["n_events"] for r in shown)
        cat_counts = Counter(c for r in shown for c in r["category_list"])
        return Prompt(
            user_id=history.user_id,
            messages=messages,
            item_ids=[r["id"] for r in shown],
            categories=[c for c, _ in cat_counts.most_common(MAX_DOMAIN_CHOICES)],
            with_text=any(r["text"] for r in shown),
            events_used=events_used,
            events_total=len(history.events) + history.n_dropped,
            truncated=keep < len(rows) or history.n_dropped > 0,
            tokens=tokens,
        )

    def _messages(
        self, user_id: str, signals: UserSignals, rows: list[dict[str, Any]], keep: int, with_text: bool
    ) -> Messages:
        shown, hidden = rows[len(rows) - keep :], rows[: len(rows) - keep]
        stats = signals.stats
        tp = signals.time_patterns
        context = {
            "user_id": user_id,
            "stats": stats,
            "scale": _fmt_scale(stats.rating_scale),
            "first_seen": (tp.first_seen or "")[:10],
            "last_seen": (tp.last_seen or "")[:10],
            "categories": stats.top_categories[:6],
            "rising": [t.domain for t in signals.category_trends if t.trend == "rising"],
            "fading": [t.domain for t in signals.category_trends if t.trend == "fading"],
            "omitted": _omitted(hidden) if hidden else None,
            "items": shown,
            "with_text": with_text and any(r["text"] for r in shown),
        }
        return [
            {"role": "system", "content": self._system_text},
            {"role": "user", "content": self.user.render(**context).strip()},
        ]


def _package_template(name: str) -> str | None:
    try:
        return (resources.files("interests.prompts") / name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None


def _fmt_scale(scale: tuple[float, float] | None) -> tuple[str, str]:
    if scale is None:
        return ("", "")
    return tuple(f"{v:g}" for v in scale)  # type: ignore[return-value]


def _item_rows(history: UserHistory, catalog: Catalog, redactor: Redactor) -> list[dict[str, Any]]:
    """One row per distinct item, ordered by the user's last interaction with it."""
    rows: dict[str, dict[str, Any]] = {}
    for e in history.events:
        row = rows.pop(e.item_id, None)
        if row is None:
            item = catalog.get_item(e.item_id)
            row = {
                "id": e.item_id,
                "title": _clip(redactor(item.title) or "", TITLE_CHARS),
                "categories": ", ".join(item.categories[:4]),
                "category_list": item.categories,
                "rating": None,
                "date": None,
                "text": "",
                "n_events": 0,
            }
        row["n_events"] += 1
        if e.rating is not None:
            row["rating"] = f"{e.rating:g}"
        if e.ts is not None:
            row["date"] = datetime.fromtimestamp(e.ts, tz=timezone.utc).strftime("%Y-%m-%d")
        if e.text:
            text = redactor(e.text) or ""
            row["text"] = _clip(f"{row['text']}; {text}" if row["text"] else text, TEXT_SNIPPET_CHARS)
        rows[e.item_id] = row  # re-insert: dict order = order of last interaction
    return list(rows.values())


def _omitted(hidden: list[dict[str, Any]]) -> dict[str, Any]:
    counts: Counter[str] = Counter(c for r in hidden for c in r["category_list"][:2])
    summary = ", ".join(f"{c} {n}" for c, n in counts.most_common(6)) or "no categories"
    return {"n_items": len(hidden), "summary": summary}


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def render_prompt(
    history: UserHistory,
    signals: UserSignals,
    catalog: Catalog | None = None,
    *,
    prompt_dir: str | Path | None = None,
    max_tokens: int = 3000,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Prompt:
    """Render one user's prompt (the ``prompts`` stage) with the default token estimate."""
    return PromptRenderer(prompt_dir).render(
        history, signals, catalog, max_tokens=max_tokens, max_items=max_items
    )


__all__ = ["DEFAULT_MAX_ITEMS", "Prompt", "PromptRenderer", "approx_tokens", "render_prompt"]
