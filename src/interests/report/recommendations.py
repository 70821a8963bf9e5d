"""Recommendations as plain data, and an adapter over a recommender model.

The reports take recommendations as plain data, so they work without a
model::

    {"u001": [{"item_id": "i0042", "title": "Neon Grid Kit 3", "score": 0.91,
               "reasons": ["because you like Cyberpunk: you rated Chrome Ghost Set 2 5/5"],
               "nodes": ["Science fiction films", "Cyberpunk"],
               "node": "Science fiction films > Cyberpunk", "source": "history"}]}

``node`` is the hierarchy node the item came from (``Domain > Topic`` of the
shared taxonomy, or the catalogue category) and ``source`` where it came
from: ``history``, ``profile``, ``steering`` or ``exploration``; both are
optional.

:func:`recommendations_from_model` fills that structure from any object with
``recommend(user_ids, k) -> (item_ids, scores)`` and ``explain(user_id,
item_id)`` (the two-tower model of :mod:`interests.recsys`, or anything shaped
like it); a model with ``recommend_items`` (the two-tower) also gives each
item's node and source, and takes the steering and ``explore`` options of
``interests recommend``. The two-tower's :class:`~interests.recsys.explain.Explanation`
is rendered by :func:`interests.recsys.explain.explanation_json` (the history
items that raised the score most, the interest nodes behind it), as in
``interests recommend --explain`` and the API. Another ``explain`` may
return a string, a list of strings, or a mapping / object with
``reasons``, ``nodes`` (or ``node``/``topic``/``domain``) and ``items``
(the user's items behind the recommendation); reasons are written
as "because you like <topic>: you rated <items>" when it gives nodes and items
but no sentences.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from ..events import Catalog, UserHistory


class Recommender(Protocol):
    def recommend(self, user_ids: Sequence[str], k: int) -> tuple[Any, Any]: ...

    def explain(self, user_id: str, item_id: str) -> Any: ...


@dataclass
class Recommendation:
    """One recommended item with why."""

    item_id: str
    title: str = ""
    score: float | None = None
    reasons: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    node: str | None = None  # the hierarchy node it came from
    source: str | None = None  # history, profile, steering or exploration

    @classmethod
    def coerce(cls, value: Recommendation | Mapping[str, Any]) -> Recommendation:
        if isinstance(value, Recommendation):
            return value
        reasons = value.get("reasons") or []
        return cls(
            item_id=str(value["item_id"]),
            title=str(value.get("title") or ""),
            score=None if value.get("score") is None else float(value["score"]),
            reasons=[reasons] if isinstance(reasons, str) else [str(r) for r in reasons],
            nodes=[str(n) for n in value.get("nodes") or []],
            node=None if value.get("node") is None else str(value["node"]),
            source=None if value.get("source") is None else str(value["source"]),
        )


RecommendationsInput = Mapping[str, Sequence[Recommendation | Mapping[str, Any]]]


def coerce_recommendations(data: RecommendationsInput | None) -> dict[str, list[Recommendation]]:
    """Plain data (user id -> list of dicts or :class:`Recommendation`) as :class:`Recommendation` lists."""
    if not data:
        return {}
    return {str(u): [Recommendation.coerce(r) for r in recs] for u, recs in data.items()}


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _fmt_rating(r: float) -> str:
    return f"{r:g}"


def because(
    node: str | None,
    item_ids: Sequence[str],
    *,
    history: UserHistory | None = None,
    catalog: Catalog | None = None,
) -> str:
    """A reason: "because you like <node>: you rated <items> ..." ("you chose" without ratings;
    "because you rated <items>" without a node)."""
    cat = catalog or Catalog()
    ratings: dict[str, float] = {}
    if history is not None:
        for e in history.events:
            if e.rating is not None:
                ratings[e.item_id] = e.rating
    parts = []
    for i in item_ids[:3]:
        title = cat.get_item(i).label()
        parts.append(f"{title} ({_fmt_rating(ratings[i])})" if i in ratings else title)
    if not parts:
        return f"because you like {node}" if node else ""
    verb = "you rated" if any(i in ratings for i in item_ids[:3]) else "you chose"
    more = f" and {len(item_ids) - 3} more" if len(item_ids) > 3 else ""
    if not node:
        return f"because {verb} {', '.join(parts)}{more}"
    return f"because you like {node}: {verb} {', '.join(parts)}{more}"


def explanation(
    raw: Any, *, history: UserHistory | None = None, catalog: Catalog | None = None
) -> tuple[list[str], list[str]]:
    """``(reasons, nodes)`` from whatever ``explain`` returned (see the module docstring)."""
    if raw is None:
        return [], []
    if hasattr(raw, "history") and hasattr(raw, "groups"):  # the two-tower's own Explanation
        from ..recsys.explain import explanation_json

        shown = explanation_json(raw, {})
        items = [b["item_id"] for b in shown["because"]]
        names = [n["node"] for n in shown["nodes"]]
        text = because(names[0] if names else None, items, history=history, catalog=catalog)
        return ([text] if text else []), names
    if isinstance(raw, str):
        return [raw], []
    if not isinstance(raw, Mapping) and isinstance(raw, Iterable):
        reasons: list[str] = []
        nodes: list[str] = []
        for part in raw:
            r, n = explanation(part, history=history, catalog=catalog)
            reasons += [x for x in r if x not in reasons]
            nodes += [x for x in n if x not in nodes]
        return reasons, nodes
    reasons = [str(r) for r in _as_list(_get(raw, "reasons", "reason"))]
    nodes = [str(n) for n in _as_list(_get(raw, "nodes", "node", "topic", "domain"))]
    items = [str(i) for i in _as_list(_get(raw, "items", "item_ids", "evidence"))]
    if not reasons and nodes:
        reasons = [because(nodes[-1], items, history=history, catalog=catalog)]
    return reasons, nodes


def _rows(value: Any) -> list[list[Any]]:
    rows: list[Any] = [
        list(r) if not isinstance(r, (str, bytes)) and isinstance(r, Iterable) else r for r in value
    ]
    if rows and not isinstance(rows[0], list):
        return [rows]  # a single user's row
    return rows


def recommendations_from_model(
    model: Recommender,
    user_ids: Sequence[str],
    *,
    k: int = 5,
    catalog: Catalog | None = None,
    histories: Mapping[str, UserHistory] | None = None,
    **steer: Any,
) -> dict[str, list[Recommendation]]:
    """Call ``model.recommend(user_ids, k)`` and ``model.explain`` for each pick.

    A model with ``recommend_items`` (the two-tower) is asked through it, so every
    item carries its node and source; ``steer`` (``domains``, ``topics``, ``avoid``,
    ``mix``, ``explore``) is passed on to it.
    """
    if not user_ids:
        return {}
    cat = catalog or Catalog()
    placed: dict[str, list[tuple[str | None, str | None]]] = {}
    if callable(getattr(model, "recommend_items", None)):
        lists = model.recommend_items(list(user_ids), k, **steer)  # type: ignore[attr-defined]
        item_rows = [[r.item_id for r in lst] for lst in lists]
        score_rows = [[r.score for r in lst] for lst in lists]
        placed = {u: [(r.node, r.source) for r in lst] for u, lst in zip(user_ids, lists, strict=False)}
    elif steer:
        raise ConfigError("this recommender cannot be steered (it has no recommend_items)")
    else:
        item_rows, score_rows = model.recommend(list(user_ids), k)
    out: dict[str, list[Recommendation]] = {}
    for uid, items, scores in zip(user_ids, _rows(item_rows), _rows(score_rows), strict=False):
        recs = []
        where = placed.get(uid, [])
        for n, (item_id, score) in enumerate(zip(items, scores, strict=False)):
            iid = str(item_id)
            try:
                raw = model.explain(uid, iid)
            except (KeyError, IndexError, ValueError):
                raw = None
            history = (histories or {}).get(uid)
            reasons, nodes = explanation(raw, history=history, catalog=cat)
            node, source = where[n] if n < len(where) else (None, None)
            recs.append(
                Recommendation(iid, cat.get_item(iid).label(), float(score), reasons, nodes, node, source)
            )
        out[uid] = recs
    return out


def load_recommender(path: str | Path) -> Recommender:
    """Load the two-tower model saved in ``path`` through :mod:`interests.recsys`."""
    try:
        recsys = importlib.import_module("interests.recsys")
    except ImportError as exc:  # torch missing, or the module is not there
        raise ConfigError(
            f"cannot load the recommender ({exc}); install the model extra: pip install 'interests[cpu]'"
        ) from exc
    for name in ("load_model", "load"):
        loader = getattr(recsys, name, None)
        if callable(loader):
            return loader(Path(path))
    for name in ("TwoTower", "TwoTowerModel", "Recommender"):
        cls = getattr(recsys, name, None)
        if cls is not None and callable(getattr(cls, "load", None)):
            return cls.load(Path(path))
    raise ConfigError("interests.recsys has no model loader yet; render without --model")


__all__ = [
    "Recommendation",
    "Recommender",
    "because",
    "coerce_recommendations",
    "explanation",
    "load_recommender",
    "recommendations_from_model",
]
