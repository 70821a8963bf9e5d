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

from ..errors import ConfigError
from ..events import Catalog, Event, UserHistory
from ..llm.base import Messages, approx_tokens
from .draft import Slot
from .redact import Redactor
from .signals import UserSignals, trend
from .skeleton import Skeleton, node_events

SYSTEM_TEMPLATE = "system.j2"
USER_TEMPLATE = "user.j2"
SKELETON_SYSTEM_TEMPLATE = "skeleton_system.j2"
SKELETON_USER_TEMPLATE = "skeleton_user.j2"
MAX_SLOT_ATTRIBUTES = 8
TEXT_SNIPPET_CHARS = 160
TITLE_CHARS = 90
MAX_DOMAIN_CHOICES = 24
#: most recent items shown per user. Chosen by measurement (bench/budget.py, docs/benchmarks.md):
#: with the embedded 135M model, 60 items cost 2.4k prompt tokens and 6.5 s a user for no better
#: profile than 30 (1.6k tokens, 4.5 s); 15 was faster still but grounding had to rename more.
DEFAULT_MAX_ITEMS = 30

TokenCounter = Callable[[Messages], int]


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
    slots: list[list[Slot]] | None = None  # structure "data": the skeleton's groups as decoder slots


class PromptRenderer:
    """Loads the templates once and renders users' prompts.

    ``skeleton=True`` loads the templates of structure "data"
    (``skeleton_system.j2``/``skeleton_user.j2``, rendered by
    :meth:`render_skeleton`); otherwise those of free grouping.
    """

    def __init__(
        self,
        prompt_dir: str | Path | None = None,
        *,
        redactor: Redactor | None = None,
        skeleton: bool = False,
    ) -> None:
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
        names = (
            (SKELETON_SYSTEM_TEMPLATE, SKELETON_USER_TEMPLATE)
            if skeleton
            else (SYSTEM_TEMPLATE, USER_TEMPLATE)
        )
        try:
            self.system = self.env.get_template(names[0])
            self.user = self.env.get_template(names[1])
            # the system prompt takes no variables: it is the prefix every user shares
            self._system_text = self.system.render().strip()
        except jinja2.TemplateError as exc:
            raise ConfigError(
                f"prompt template error: {exc} ({names[0]} takes no variables; see docs/prompts.md)"
            ) from exc
        sources = [self.env.loader.get_source(self.env, n)[0] for n in names]  # type: ignore[union-attr]
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
        keep, messages, tokens = _fit(
            lambda k: self._messages(history.user_id, signals, rows, k, with_text),
            min(len(rows), max_items),
            max_tokens,
            count_tokens,
        )
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

    def render_skeleton(
        self,
        history: UserHistory,
        signals: UserSignals,
        skeleton: Skeleton,
        catalog: Catalog | None = None,
        *,
        max_tokens: int = 3000,
        max_items: int = DEFAULT_MAX_ITEMS,
        count_tokens: TokenCounter = approx_tokens,
    ) -> Prompt:
        """Messages for one user's skeleton: every group, with its most recent items, within the budget."""
        cat = catalog or Catalog()
        rows = {r["id"]: r for r in _item_rows(history, cat, self.redactor)}
        events = {t.key: node_events(history, t.item_ids) for _, t in skeleton.topics()}
        # once per user, not once per step of the budget search
        trends = {
            d.key: trend(history.events, [e.item_id in set(d.item_ids) for e in history.events])[0]
            for d in skeleton.domains
        }

        def view_of(budget: int) -> list[dict[str, Any]]:
            return _skeleton_view(skeleton, trends, rows, events, cat, budget)

        # every topic keeps at least one item whatever the budget
        keep, messages, tokens = _fit(
            lambda k: self._skeleton_messages(history.user_id, signals, view_of(k)),
            max(max_items, len(skeleton.topics())),
            max_tokens,
            count_tokens,
        )
        view = view_of(keep)
        shown = [it["id"] for d in view for t in d["topics"] for it in t["rows"]]
        slots = [
            [
                Slot(
                    [it["id"] for it in t["rows"]],
                    tuple(t["attributes"]),
                    with_text=any(it["text"] for it in t["rows"]),
                )
                for t in d["topics"]
            ]
            for d in view
        ]
        return Prompt(
            user_id=history.user_id,
            messages=messages,
            item_ids=shown,
            categories=[],
            with_text=any(s.with_text for ss in slots for s in ss),
            events_used=sum(rows[i]["n_events"] for i in shown),
            events_total=len(history.events) + history.n_dropped,
            truncated=len(shown) < len(rows) or history.n_dropped > 0,
            tokens=tokens,
            slots=slots,
        )

    def _skeleton_messages(self, user_id: str, signals: UserSignals, view: list[dict[str, Any]]) -> Messages:
        stats, tp = signals.stats, signals.time_patterns
        context = {
            "user_id": user_id,
            "stats": stats,
            "scale": _fmt_scale(stats.rating_scale),
            "first_seen": (tp.first_seen or "")[:10],
            "last_seen": (tp.last_seen or "")[:10],
            "groups": view,
            "with_text": any(it["text"] for d in view for t in d["topics"] for it in t["rows"]),
        }
        return [
            {"role": "system", "content": self._system_text},
            {"role": "user", "content": self.user.render(**context).strip()},
        ]

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


def _fit(
    build: Callable[[int], Messages], keep: int, max_tokens: int, count_tokens: TokenCounter
) -> tuple[int, Messages, int]:
    """The largest item budget (at most ``keep``, at least 1) whose messages fit ``max_tokens``."""
    messages = build(keep)
    tokens = count_tokens(messages)
    if tokens <= max_tokens:
        return keep, messages, tokens
    lo, hi = 1, keep - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if count_tokens(build(mid)) <= max_tokens:
            lo = mid + 1
        else:
            hi = mid - 1
    keep = max(hi, 1)
    messages = build(keep)
    return keep, messages, count_tokens(messages)


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


def _hint(key: str, label: str, source: str) -> str:
    if source == "cluster":
        return f'"{label.replace(" / ", " ")}" (common words)'
    if source == "other":
        return f'"{label}" (items of no single topic)'
    return f'"{label}"'


def _mean_rating(events: list[Event]) -> str:
    ratings = [e.rating for e in events if e.rating is not None]
    return f"{sum(ratings) / len(ratings):.1f}" if ratings else ""


def _share_items(counts: list[int], budget: int) -> list[int]:
    """Split ``budget`` shown items over groups in proportion to their item counts, at least one each."""
    shares = [min(1, c) for c in counts]
    for _ in range(budget - sum(shares)):
        open_ = [k for k, c in enumerate(counts) if c > shares[k]]
        if not open_:
            break
        k = max(open_, key=lambda k: counts[k] / shares[k])
        shares[k] += 1
    return shares


def _skeleton_view(
    skeleton: Skeleton,
    trends: dict[str, str],
    rows: dict[str, dict[str, Any]],
    events: dict[str, list[Event]],
    catalog: Catalog,
    budget: int,
) -> list[dict[str, Any]]:
    """What the template shows of each group: shares, ratings, trend, hint, attributes, recent items."""
    pairs = skeleton.topics()
    shown = _share_items([len(t.item_ids) for _, t in pairs], budget)
    per_topic = {t.key: n for (_, t), n in zip(pairs, shown, strict=True)}
    total = max(skeleton.n_events, 1)
    view = []
    for d_i, d in enumerate(skeleton.domains, start=1):
        d_events = [e for t in d.topics for e in events[t.key]]
        topics = []
        for t_i, t in enumerate(d.topics, start=1):
            n = per_topic[t.key]
            attrs = Counter(
                f"{a}: {v}" for i in t.item_ids for a, v in catalog.get_item(i).attributes.items() if v
            )
            topics.append(
                {
                    "slot": f"d{d_i}.t{t_i}",
                    "share": round(100 * t.n_events / max(d.n_events, 1)),
                    "rating": _mean_rating(events[t.key]),
                    "hint": _hint(t.key, t.label, t.source),
                    "attributes": [a for a, _ in attrs.most_common(MAX_SLOT_ATTRIBUTES)],
                    "rows": [rows[i] for i in t.item_ids[-n:]],
                    "hidden": max(len(t.item_ids) - n, 0),
                }
            )
        view.append(
            {
                "slot": f"d{d_i}",
                "share": round(100 * d.n_events / total),
                "rating": _mean_rating(d_events),
                "trend": trends[d.key],
                "hint": _hint(d.key, d.label, d.source),
                "topics": topics,
            }
        )
    return view


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


__all__ = ["DEFAULT_MAX_ITEMS", "Prompt", "PromptRenderer", "render_prompt"]
