"""Exact decomposition of a fused two-tower score into history items, interest nodes and input groups.

With ``a = fusion`` and per-user standardisation constants ``(mu_b, sd_b)``
of the backbone and ``(mu_t, sd_t)`` of the tower::

    final = -(1-a) mu_b/sd_b - a mu_t/sd_t              (offset)
          + (1-a)/sd_b * sum_j w_j B[j, i]              (backbone, per history item j)
          + a/sd_t * sum_j alpha_j (W_hist v_j) . v_i   (tower history, per history item j)
          + a/sd_t * sum_k x_k (W_tax e_k) . v_i        (taxonomy, per global node k)
          + a/sd_t * (profile + L3 + bias) . v_i        (other groups)

so every listed term is a real share of the score, and they add up to it.
The user groups are those of :data:`~interests.recsys.features.USER_GROUPS`,
each under its name; a group's :meth:`~interests.recsys.features.FeatureGroup.terms`
splits its share further (the taxonomy's, over its nodes).

:func:`explanation_json` and :func:`reason_lines` render an explanation the
same way for ``interests recommend --explain``, the API and the reports: the
history items that raised the score most (``because``) and the interest nodes
behind it (``nodes``), each with its exact share; terms that lowered the score
are not reasons and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from interests.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .data import Histories
    from .features import UserFeatures
    from .towers import FittedTowers


@dataclass
class Explanation:
    """Why ``item_id`` scored ``score`` for ``user_id``; the terms add up to the score.

    ``score == offset + sum(groups.values())``; ``history`` splits
    ``groups["history"] + groups["backbone"]`` over the user's history items;
    ``nodes`` splits ``groups["taxonomy"]`` over global taxonomy nodes (empty
    without a taxonomy); ``profile_nodes`` regroups ``history`` by the profile
    domain/topic that cites each item.
    """

    user_id: str
    item_id: str
    score: float
    offset: float
    groups: dict[str, float]
    history: list[tuple[str, float]]
    nodes: list[tuple[str, float]] = field(default_factory=list)
    profile_nodes: list[tuple[str, float]] = field(default_factory=list)
    item_node: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "score": self.score,
            "offset": self.offset,
            "groups": self.groups,
            "history": [list(x) for x in self.history],
            "nodes": [list(x) for x in self.nodes],
            "profile_nodes": [list(x) for x in self.profile_nodes],
            "item_node": self.item_node,
        }


def _tower_groups(
    model: FittedTowers, query: Histories, feats: UserFeatures
) -> tuple[Any, dict[str, Any], np.ndarray]:
    """Item vectors, the first query user's vector per input group, and that user's tower scores
    (the groups and the user bias sum to the user vector). Call under ``torch.no_grad()``."""
    import torch

    net = model.net
    vecs = model.item_vecs
    users = {n: torch.tensor(x) for n, x in feats.groups.items()}
    groups = net.group_vectors(model.history_tensor(query), users, item_vecs=vecs)
    u = sum(groups.values()) + net.user_bias
    return vecs, groups, (u @ vecs.T).numpy()[0].astype(np.float64)


def explain_score(
    model: FittedTowers,
    query: Histories,
    feats: UserFeatures,
    user_id: str,
    item_id: str,
    *,
    cited: Mapping[str, str] | None = None,
) -> Explanation:
    """The exact parts of the fused score of ``item_id`` for the one user of ``query``/``feats``.

    ``cited`` (``{item_id: "Domain > Topic"}``, default: what the training profile of
    ``user_id`` cited) regroups the history terms as ``profile_nodes``.
    """
    import torch

    if item_id not in model.known.item_index:
        raise ConfigError(f"unknown item {item_id!r}")
    i = model.known.item_index[item_id]
    net, cfg = model.net, model.config
    with torch.no_grad():
        vecs, groups, tw_all = _tower_groups(model, query, feats)
        hist = model.history_tensor(query)
        vi = vecs[i]
        g_val = {g: float(groups[g][0] @ vi) for g in groups}
        g_val["bias"] = float(net.user_bias @ vi)
        per_pos: dict[int, float] = {}
        if cfg.use_history:
            w = net.history_weights(hist)[0]
            proj = net.hist_proj(vecs[hist[0].clamp(min=0)]) @ vi
            for p in range(hist.shape[1]):
                if int(hist[0, p]) >= 0:
                    j = int(hist[0, p])
                    per_pos[j] = per_pos.get(j, 0.0) + float(w[p] * proj[p])
        node_terms: list[tuple[str, float]] = []
        for g in net.user_groups:
            if g.enabled(cfg):
                node_terms += g.terms(model, net.get_submodule(g.module_name), feats[g.name][0], vi)
    if model.backbone is not None:
        a = 0.5 if cfg.fusion is None else float(cfg.fusion)
        bb_all = model.backbone.score(query)[0].astype(np.float64)
        mu_b, sd_b = bb_all.mean(), bb_all.std() + 1e-9
        mu_t, sd_t = tw_all.mean(), tw_all.std() + 1e-9
        sb, st = (1 - a) / sd_b, a / sd_t
        offset = -(1 - a) * mu_b / sd_b - a * mu_t / sd_t
        bb_terms = model.backbone.contributions(query, 0, i)
        bb_item = float(bb_all[i])
    else:
        sb, st, offset, bb_terms, bb_item = 0.0, 1.0, 0.0, {}, 0.0
    groups_out = {g: st * v for g, v in g_val.items()}
    groups_out["backbone"] = sb * bb_item
    hist_terms: dict[int, float] = {}
    for j, v in per_pos.items():
        hist_terms[j] = hist_terms.get(j, 0.0) + st * v
    for j, v in bb_terms.items():
        hist_terms[j] = hist_terms.get(j, 0.0) + sb * v
    ids = model.known.item_ids
    history = sorted(((ids[j], v) for j, v in hist_terms.items()), key=lambda x: -abs(x[1]))
    nodes = sorted(((n, st * v) for n, v in node_terms), key=lambda x: -abs(x[1]))
    cited = cited if cited is not None else model.profile_nodes.get(user_id, {})
    by_node: dict[str, float] = {}
    for iid, v in history:
        if iid in cited:
            by_node[cited[iid]] = by_node.get(cited[iid], 0.0) + v
    item_node = model.node_index.item_node(i)  # Domain > Topic, else the catalogue category
    score = offset + sum(groups_out.values())
    return Explanation(
        user_id,
        item_id,
        float(score),
        float(offset),
        groups_out,
        history,
        nodes,
        sorted(by_node.items(), key=lambda x: -abs(x[1])),
        item_node,
    )


def profile_wins(model: FittedTowers, query: Histories, feats: UserFeatures) -> np.ndarray:
    """For every item, whether one user's profile groups add more to its fused score than the history's.

    The fused score splits exactly into input groups (:func:`explain_score`): the
    profile's are the user groups marked ``from_profile`` (its text and its weights
    over the taxonomy), the history's are the history pooling and the EASE backbone.
    A user without a profile: all ``False``.
    """
    import torch

    n = model.known.n_items
    if not bool(np.asarray(feats.has_profile).reshape(-1)[0]):
        return np.zeros(n, dtype=bool)
    cfg = model.config
    with torch.no_grad():
        vecs, groups, tw_all = _tower_groups(model, query, feats)
        part = {g: (groups[g][0] @ vecs.T).numpy().astype(np.float64) for g in groups}
    if model.backbone is not None:
        a = 0.5 if cfg.fusion is None else float(cfg.fusion)
        bb = model.backbone.score(query)[0].astype(np.float64)
        sb, st = (1 - a) / (bb.std() + 1e-9), a / (tw_all.std() + 1e-9)
    else:
        sb, st, bb = 0.0, 1.0, np.zeros(n)
    from_profile = sum(part[g.name] for g in model.net.user_groups if g.from_profile)
    return np.asarray(st * from_profile > st * part["history"] + sb * bb)


def pick_sources(
    model: FittedTowers, query: Histories, feats: UserFeatures, items: Sequence[int]
) -> list[str]:
    """``"profile"`` or ``"history"`` for each of one user's recommended ``items`` (:func:`profile_wins`)."""
    if not len(items):
        return []
    wins = profile_wins(model, query, feats)
    return ["profile" if wins[i] else "history" for i in items]


TOP = 3


def explanation_json(ex: Explanation, titles: Mapping[str, str], top: int = TOP) -> dict[str, Any]:
    """``{"because": [{item_id, title, contribution}], "nodes": [{node, contribution}]}``, largest first."""
    items = sorted(((i, v) for i, v in ex.history if v > 0), key=lambda x: -x[1])[:top]
    nodes = sorted(((n, v) for n, v in (ex.nodes or ex.profile_nodes) if v > 0), key=lambda x: -x[1])[:top]
    return {
        "because": [
            {"item_id": i, "title": titles.get(i, ""), "contribution": round(v, 4)} for i, v in items
        ],
        "nodes": [{"node": n, "contribution": round(v, 4)} for n, v in nodes],
    }


def reason_lines(rec: Mapping[str, Any]) -> list[str]:
    """``["because: A; B; C", "interests: X; Y", "from: Domain > Topic (history)"]``:
    :func:`explanation_json`'s fields, then the item's node and source when the record has them."""
    lines = []
    if rec.get("source"):
        node = rec.get("node")
        tail = [f"from: {node} ({rec['source']})" if node else f"from: {rec['source']}"]
    else:
        tail = []
    if rec.get("because"):
        lines.append("because: " + "; ".join(b["title"] or b["item_id"] for b in rec["because"]))
    if rec.get("nodes"):
        lines.append("interests: " + "; ".join(x["node"] for x in rec["nodes"]))
    return lines + tail


__all__ = ["TOP", "explain_score", "explanation_json", "pick_sources", "profile_wins", "reason_lines"]
