"""Recommendation lists from fused score rows: top-k with the diversity re-rank, steering, explore slots.

The functions read a :class:`~interests.recsys.towers.FittedTowers`; the
recommender (:class:`~interests.recsys.recommender.TwoTower`) and the service
(:mod:`interests.api.scoring`) build their lists with them, so both rank the
same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .metrics import top_k
from .rerank import mmr_rerank
from .steer import Pick, Recommended, Resolved, pick

if TYPE_CHECKING:  # pragma: no cover
    from .data import Histories
    from .features import UserFeatures
    from .towers import FittedTowers


def top_lists(
    fitted: FittedTowers, scores: np.ndarray, exclude: Histories | None, k: int, diverse: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, scores)`` ``[users, k]`` (padded with ``""`` / ``-inf``), ``exclude``'s items left out."""
    s = scores.astype(np.float32, copy=True)
    if exclude is not None:
        for r, items in enumerate(exclude.items):
            s[r, items] = -np.inf
    pool = k if diverse <= 0 else min(s.shape[1], max(5 * k, 50))
    top = top_k(s, pool)
    out_i, out_s = [], []
    for r in range(len(s)):
        cand = top[r][np.isfinite(s[r, top[r]])]
        items, vals = mmr_rerank(cand, s[r, cand], fitted.domains, k, diverse)
        out_i.append([fitted.known.item_ids[j] for j in items])
        out_s.append(vals)
    width = max((len(x) for x in out_i), default=0)
    ids = np.array([x + [""] * (width - len(x)) for x in out_i], dtype=object)
    sc = np.array([np.pad(v, (0, width - len(v)), constant_values=-np.inf) for v in out_s], dtype=np.float32)
    return ids, sc


def steered_row(
    fitted: FittedTowers,
    scores: np.ndarray,
    user_items: np.ndarray,
    feats: UserFeatures | None,
    k: int,
    *,
    steer: Resolved,
    explore: int = 0,
    diverse: float = 0.0,
    bandit: Any = None,
    user: str | None = None,
) -> list[Pick]:
    """One user's list from a fused score row (items to leave out already ``-inf``).

    ``bandit`` (:class:`~interests.recsys.explore.DomainBandit`) orders the explore
    domains by a Thompson sample; without one, by the transition prior.
    """
    from .explore import explore_order

    slots: list[tuple[int, np.ndarray, str]] = []
    if explore > 0:
        dom, names = fitted.explore_domains()
        n_dom = len(names)
        avail = np.isfinite(scores) & ~steer.avoid_mask(len(scores)) & (dom >= 0)
        blocked = np.bincount(dom[avail], minlength=n_dom) == 0
        pw = None
        if feats is not None and fitted.nodes.n_domains:
            pw = np.asarray(feats["taxonomy"][0, : fitted.nodes.n_domains], dtype=np.float64)
        order, _ = explore_order(
            fitted.explore_transitions(),
            dom,
            n_dom,
            user_items,
            profile_weights=pw,
            blocked=blocked,
            bandit=bandit,
            user=user,
        )
        slots = [(int(d), dom == d, names[int(d)]) for d in order[:explore]]
    return pick(
        scores,
        k,
        index=fitted.node_index,
        steer=steer,
        domains=fitted.domains,
        diverse=diverse,
        explore=slots,
    )


def recommended(
    fitted: FittedTowers, picks: list[Pick], query: Histories, feats: UserFeatures
) -> list[Recommended]:
    """Picks as :class:`Recommended` items; model picks get ``history`` or ``profile``."""
    from .explain import pick_sources

    model_items = [p.item for p in picks if p.source == "model"]
    src = dict(zip(model_items, pick_sources(fitted, query, feats, model_items), strict=True))
    titles = fitted.titles
    return [
        Recommended(
            fitted.known.item_ids[p.item],
            p.score,
            titles[p.item] if p.item < len(titles) else "",
            p.node,
            src.get(p.item, "history") if p.source == "model" else p.source,
        )
        for p in picks
    ]


def as_arrays(lists: Sequence[Sequence[Recommended]]) -> tuple[np.ndarray, np.ndarray]:
    """``Recommended`` lists as the ``(ids, scores)`` arrays of ``TwoTower.recommend`` (2-D, padded)."""
    width = max((len(x) for x in lists), default=0)
    ids = np.array([[r.item_id for r in x] + [""] * (width - len(x)) for x in lists], dtype=object)
    sc = np.array(
        [[r.score for r in x] + [-np.inf] * (width - len(x)) for x in lists], dtype=np.float32
    ).reshape(len(lists), width)
    return ids.reshape(len(lists), width), sc


__all__ = ["as_arrays", "recommended", "steered_row", "top_lists"]
