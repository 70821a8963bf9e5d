"""A profile as context for another LLM: its lines by priority, cut to a token budget.

:func:`context` renders a profile with ``prompts/context.j2`` (or a template
of yours) as whole lines, most important first: a header, one line per
domain (by weight, ties: the most recent first), one per topic (by its share
of all the user's events), the summary, the activity rhythm. Each node line
carries its share, evidence count, trend, rating and a confidence from its
evidence count. Tokens are counted with a model's own tokenizer (default:
the embedded model's). While the text is over budget the lowest-priority line
is dropped, whole (found by bisection over how many entries are kept, each
candidate rendered and counted); the header and the top-weight domain are
never dropped: when even they do not fit, :class:`ContextBudgetError`
says how many tokens they need. See docs/context.md.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from ..errors import ConfigError, InterestsError
from ..schema import InterestProfile

Format = Literal["text", "markdown", "json"]
FORMATS: tuple[str, ...] = ("text", "markdown", "json")
TEMPLATE = "context.j2"
WEEKDAYS = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
#: evidence (events, or items when the logs had no times) for "high" and "medium" confidence
CONFIDENCE = ((10, "high"), (4, "medium"))


class ContextBudgetError(InterestsError):
    """The header and the top-weight domain alone are over the token budget."""


@dataclass
class ContextResult:
    """What :func:`render_context` made: the text and how it fits."""

    user_id: str
    text: str
    tokens: int  # by the tokenizer's count
    budget: int
    format: str
    lines_kept: int  # entries (header, domains, topics, summary, activity) in the text
    lines_total: int  # entries the profile has
    top_domain: str | None

    @property
    def dropped(self) -> int:
        return self.lines_total - self.lines_kept


def _date(ts: str | None) -> str | None:
    return ts[:10] if ts else None


def _month(ts: str | None) -> str | None:
    return ts[:7] if ts else None


def _confidence(evidence: int) -> str:
    return next((label for floor, label in CONFIDENCE if evidence >= floor), "low")


def _rating(r: float | None, n: int, scale: tuple[float, float] | None) -> dict[str, Any] | None:
    if r is None or n == 0:
        return None
    out: dict[str, Any] = {"score": round(r, 2), "n": n}
    if scale is not None:
        lo, hi = scale
        out["mean"], out["of"] = round(lo + (r + 1) / 2 * (hi - lo), 1), f"{hi:g}"
    return out


def _entries(p: InterestProfile) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, Any]]]:
    """The header, the domains (with their topics) and every droppable entry in priority order."""
    tp, scale = p.time_patterns, p.stats.rating_scale
    trends = {t.domain: t for t in tp.by_domain}
    header = {
        "id": p.user_id,
        "n_events": p.stats.n_events,
        "n_items": p.stats.n_items,
        "first_seen": _date(tp.first_seen),
        "last_seen": _date(tp.last_seen),
    }
    domains: list[dict[str, Any]] = []
    for d in p.domains:
        tr = trends.get(d.name)
        items = len({i for t in d.topics for i in t.item_ids})
        events = tr.n_events if tr is not None and tr.n_events else None
        topics: list[dict[str, Any]] = [
            {
                "name": t.name,
                "share": t.weight,
                "percent": round(100 * t.weight),
                "global": d.weight * t.weight,
                "n_items": len(t.item_ids),
                "rating": _rating(t.sentiment.rating, t.sentiment.n_ratings, scale),
                "confidence": _confidence(len(t.item_ids)),
            }
            for t in sorted(d.topics, key=lambda t: -t.weight)
        ]
        domains.append(
            {
                "name": d.name,
                "share": d.weight,
                "percent": round(100 * d.weight),
                "n_events": events,
                "n_items": items,
                "trend": tr.trend if tr is not None else None,
                "last_seen": _month(tr.last_seen) if tr is not None else None,
                "rating": _rating(d.sentiment.rating, d.sentiment.n_ratings, scale),
                "confidence": _confidence(events if events is not None else items),
                "topics": topics,
            }
        )
    # by weight; ties: the most recent first (two stable sorts)
    domains.sort(key=lambda d: d["last_seen"] or "", reverse=True)
    domains.sort(key=lambda d: -d["share"])
    order: list[tuple[str, Any]] = [("domain", d) for d in domains]
    pairs = [(d, t) for d in domains for t in d["topics"]]
    order += [("topic", dt) for dt in sorted(pairs, key=lambda dt: -dt[1]["global"])]
    if p.summary.strip():
        order.append(("summary", p.summary.strip()))
    if tp.n_sessions or any(tp.hour_of_day):
        hours = sorted(range(24), key=lambda h: -tp.hour_of_day[h])[:2]
        days = sorted(range(7), key=lambda k: -tp.weekday[k])[:2]
        activity = {
            "timezone": tp.timezone,
            "hours": sorted(h for h in hours if tp.hour_of_day[h] > 0),
            "days": [WEEKDAYS[k] for k in days if tp.weekday[k] > 0],
            "sessions": tp.n_sessions,
            "first_seen": _date(tp.first_seen),
            "last_seen": _date(tp.last_seen),
            "recency_days": None if tp.recency_days is None else round(tp.recency_days),
            "as_of": _date(tp.as_of),
        }
        order.append(("activity", activity))
    return header, domains, order


def _package_template() -> str:
    return (resources.files("interests.prompts") / TEMPLATE).read_text(encoding="utf-8")


def _template(template: str | Path | None) -> jinja2.Template:
    if template is None:
        return _compiled(_package_template())
    path = Path(template)
    if not path.is_file():
        raise ConfigError(f"--template {template}: no such file")
    return _compiled(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=16)
def _compiled(source: str) -> jinja2.Template:
    """A template compiled once per source text (compiling costs more than rendering)."""
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    try:
        return env.from_string(source)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"context template error: {exc} (see docs/context.md)") from exc


def _view(header: dict[str, Any], order: list[tuple[str, Any]], keep: int, total: int) -> dict[str, Any]:
    """The template's variables when the first ``keep`` entries of ``order`` are kept."""
    kept = order[:keep]
    kept_topics = {id(v[1]) for k, v in kept if k == "topic"}
    domains = []
    for kind, d in kept:
        if kind == "domain":
            topics = [t for t in d["topics"] if id(t) in kept_topics]
            domains.append({k: v for k, v in d.items() if k != "topics"} | {"topics": topics})
    summary = next((v for k, v in kept if k == "summary"), None)
    activity = next((v for k, v in kept if k == "activity"), None)
    return {
        "user": header,
        "domains": domains,
        "summary": summary,
        "activity": activity,
        "dropped": total - 1 - keep,
    }


def _json(view: dict[str, Any]) -> str:
    """The kept entries as compact JSON (short keys: every key costs tokens)."""

    def node(n: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": n["name"], "share": n["percent"]}
        if n.get("n_events"):
            out["events"] = n["n_events"]
        else:
            out["items"] = n["n_items"]
        for key, short in (("trend", "trend"), ("last_seen", "last")):
            if n.get(key):
                out[short] = n[key]
        r = n["rating"]
        if r is not None:
            out["rating"] = f"{r['mean']}/{r['of']}" if "mean" in r else r["score"]
        out["confidence"] = n["confidence"]
        if n.get("topics"):
            out["topics"] = [node(t) for t in n["topics"]]
        return out

    user = view["user"]
    doc: dict[str, Any] = {"user": user["id"]}
    if view["dropped"]:
        doc["dropped"] = view["dropped"]
    doc["domains"] = [node(d) for d in view["domains"]]
    if view["summary"] is not None:
        doc["summary"] = view["summary"]
    if view["activity"] is not None:
        activity = {"events": user["n_events"], **view["activity"]}
        doc["activity"] = {k: v for k, v in activity.items() if v not in (None, [])}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def render_context(
    profile: InterestProfile | Mapping[str, Any],
    tokens: int = 256,
    *,
    format: Format | str = "text",
    tokenizer: str | Callable[[str], int] | None = None,
    template: str | Path | None = None,
) -> ContextResult:
    """The profile as whole lines within ``tokens`` tokens, and how it fits (see :func:`context`)."""
    p = profile if isinstance(profile, InterestProfile) else InterestProfile.model_validate(profile)
    if format not in FORMATS:
        raise ConfigError(f"unknown context format {format!r}; one of {', '.join(FORMATS)}")
    if tokens < 1:
        raise ConfigError(f"the token budget must be at least 1, not {tokens}")
    if callable(tokenizer):
        count = tokenizer
    else:
        from ..llm.tokens import TextTokens

        count = TextTokens(tokenizer)
    tpl = _template(template) if format != "json" else None
    header, domains, order = _entries(p)
    total = 1 + len(order)

    def render(keep: int) -> str:
        view = _view(header, order, keep, total)
        if tpl is None:
            return _json(view)
        try:
            return tpl.render(format=format, **view).strip()
        except jinja2.TemplateError as exc:
            raise ConfigError(f"context template error: {exc} (see docs/context.md)") from exc

    least = 1 if domains else 0  # the top-weight domain is never dropped
    made: dict[int, tuple[str, int]] = {}

    def fit(keep: int) -> tuple[str, int]:
        if keep not in made:
            text = render(keep)
            made[keep] = (text, count(text))
        return made[keep]

    # Dropping the lowest-priority entry until the text fits keeps the largest prefix of entries
    # that fits; the count grows with every entry kept, so it is found by bisection: the result
    # fits and one entry more does not (a few renders instead of one per entry).
    lo, hi = least, len(order)
    if fit(hi)[1] <= tokens:
        lo = hi
    elif fit(lo)[1] > tokens:
        raise ContextBudgetError(
            f"user {p.user_id}: the header and the top domain alone take {fit(lo)[1]} tokens, "
            f"over the budget of {tokens}; give --tokens {fit(lo)[1]} or more"
        )
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fit(mid)[1] <= tokens else (lo, mid)
    text, n = fit(lo)
    keep = lo
    top = domains[0]["name"] if domains else None
    return ContextResult(p.user_id, text, n, tokens, format, 1 + keep, total, top)


def context(
    profile: InterestProfile | Mapping[str, Any],
    tokens: int = 256,
    *,
    format: Format | str = "text",
    tokenizer: str | Callable[[str], int] | None = None,
    template: str | Path | None = None,
) -> str:
    """The profile rendered for another LLM's prompt, within ``tokens`` tokens.

    ``format``: ``text``, ``markdown`` (both through the template) or ``json``
    (compact JSON). ``tokenizer``: an embedded model name, a local model or
    tokenizer folder, or a function that counts a string's tokens (default:
    the embedded model's tokenizer). ``template``: a Jinja file that replaces
    ``prompts/context.j2``. Lowest-priority lines are dropped whole until the
    text fits; :class:`ContextBudgetError` when the header and the top domain
    alone do not.
    """
    return render_context(profile, tokens, format=format, tokenizer=tokenizer, template=template).text


__all__ = ["FORMATS", "ContextBudgetError", "ContextResult", "context", "render_context"]
