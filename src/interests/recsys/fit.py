"""Fitting a two-tower model: data in, a :class:`~interests.recsys.towers.FittedTowers` out.

:func:`fit_towers` trains one model with a given config (what ``TwoTower.fit``
does); the fusion weight is chosen by :mod:`interests.recsys.fusion`, and
:func:`~interests.recsys.select.fit_two_tower` (``interests train``) chooses
the backbone, the epochs, the fusion and the inputs on valid, then refits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stats import rating_scale
from .backbone import Backbone, ItemItemBackbone, ItemWeights, SequenceBackbone, choose_backbone
from .data import Histories, from_user_histories, item_domains
from .features import ItemNodes, UserFeatures, feature_group, item_texts
from .metrics import ndcg_at_k
from .model import TwoTowerConfig
from .steer import ItemCategories, NodeIndex
from .towers import FittedTowers, LazyEncoder, build_features, tower_vectors

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.scale.ray_train import RayTraining
    from interests.schema import InterestProfile
    from interests.taxonomy.model import Taxonomy

log = logging.getLogger(__name__)

Profiles = Sequence["InterestProfile"] | Mapping[str, "InterestProfile"] | None


def as_histories(data: Any) -> tuple[Histories, Catalog | None]:
    """``Logs``, ``{user: UserHistory}`` or :class:`Histories` as histories (and the logs' catalogue)."""
    if isinstance(data, Histories):
        return data, None
    histories = getattr(data, "histories", data)
    return from_user_histories(histories), getattr(data, "catalog", None)


def profile_map(profiles: Profiles) -> dict[str, InterestProfile]:
    """Profiles by user id."""
    if profiles is None:
        return {}
    if isinstance(profiles, Mapping):
        return dict(profiles)
    return {p.user_id: p for p in profiles}


def cited_nodes(profile: InterestProfile) -> dict[str, str]:
    """``{item_id: "Domain > Topic"}`` for every item the profile cites (the first citation wins)."""
    out: dict[str, str] = {}
    for d in profile.domains:
        for t in d.topics:
            for i in t.item_ids:
                out.setdefault(i, f"{d.name} > {t.name}")
    return out


def reads(cfg: TwoTowerConfig, what: str) -> bool:
    """Whether a user group switched on reads ``what`` (``profiles``, ``taxonomy``, ``text``)."""
    return any(what in g.reads and g.on(cfg) for g in map(feature_group, cfg.user_groups))


def fit_towers(
    config: TwoTowerConfig,
    data: Any,
    *,
    catalog: Catalog | None = None,
    profiles: Profiles = None,
    taxonomy: Taxonomy | None = None,
    valid: Mapping[str, Sequence[str]] | None = None,
    item_weights: ItemWeights | None = None,
    epochs: int | None = None,
    distributed: RayTraining | None = None,
) -> FittedTowers:
    """Train on ``data`` (``Logs``, ``{user: UserHistory}`` or :class:`Histories`); see ``TwoTower.fit``.

    ``config`` is not changed: the fitted model's config is a copy with the sizes, the text
    dimension and what was chosen on ``valid`` filled in.
    """
    import torch

    from .explore import Transitions
    from .fusion import tune_fusion
    from .model import TwoTowerNet
    from .train import train_net

    known, cat = as_histories(data)
    catalog = catalog if catalog is not None else cat
    cfg = TwoTowerConfig.from_dict(config.to_dict())
    # inputs switched off are not looked at: an ablation is the model that never had them
    # (a taxonomy would still size the node embeddings and so change the random init)
    if not (cfg.use_item_nodes or reads(cfg, "taxonomy")):
        taxonomy = None
    if not reads(cfg, "profiles"):
        profiles = None
    torch.manual_seed(cfg.seed)
    cfg.n_items = known.n_items
    titles = [catalog.get_item(i).label() if catalog is not None else i for i in known.item_ids]
    nodes = (
        ItemNodes.from_taxonomy(taxonomy, known.item_ids, catalog)
        if taxonomy is not None
        else ItemNodes.empty(known.n_items)
    )
    assign = (
        taxonomy.assign_items([catalog.get_item(i) for i in known.item_ids])
        if (taxonomy is not None and catalog is not None)
        else None
    )
    domains = item_domains(known.item_ids, catalog, assign)
    categories = ItemCategories.from_catalog(known.item_ids, catalog)
    dom, names = NodeIndex(nodes, categories, known.n_items).domain_space(domains)
    transitions = Transitions.fit(known.items, dom, len(names))
    cfg.n_domains, cfg.n_topics = nodes.n_domains, nodes.n_topics
    ratings = np.concatenate(known.ratings) if known.items else np.zeros(0)
    scale = rating_scale(ratings)
    times = np.concatenate(known.times) if known.items else np.zeros(0)
    times = times[~np.isnan(times)]
    ref_time = float(times.max()) if len(times) else None
    pmap = profile_map(profiles)
    log.info(
        "two-tower: %d users, %d items, %d profiles, %s",
        known.n_users,
        known.n_items,
        len(pmap),
        "a taxonomy" if taxonomy is not None else "no taxonomy",
    )
    t0 = time.perf_counter()
    encoder = LazyEncoder(cfg.encoder)
    item_x, text_basis = _fit_text(cfg, encoder, catalog, known)
    feats = build_features(
        cfg,
        nodes,
        known,
        pmap,
        encoder=encoder,
        text_basis=text_basis,
        scale=scale,
        ref_time=ref_time,
        cold_n=cfg.cold_context if cfg.cold_context_prob > 0 else None,
    )
    net = TwoTowerNet(cfg)
    if cfg.text_dim:
        net.item_text.copy_(torch.tensor(item_x))  # type: ignore[operator]
    if cfg.n_topics:
        net.item_dom.copy_(  # type: ignore[operator]
            torch.tensor(np.where(nodes.domain >= 0, nodes.domain, cfg.n_domains))
        )
        net.item_topic.copy_(  # type: ignore[operator]
            torch.tensor(np.where(nodes.topic >= 0, nodes.topic, cfg.n_topics))
        )
    log.info("features and item text ready (%.1fs)", time.perf_counter() - t0)
    eval_fn: ValidProbe | None = None
    vq: Histories | None = None
    rows: list[int] = []
    targets: list[np.ndarray] = []
    if valid:
        uidx = known.user_index()
        rows = [uidx[u] for u in valid if u in uidx]
        vq = known.take(rows)
        targets = [
            np.array([known.item_index[i] for i in valid[known.user_ids[r]] if i in known.item_index])
            for r in rows
        ]
        eval_fn = ValidProbe(vq, feats.take(rows), targets)
    backbone, backbone_choice = (
        _fit_backbone(cfg, known, item_weights, vq, targets) if cfg.backbone else (None, None)
    )
    t0 = time.perf_counter()
    if distributed is not None:
        # the spec trains itself: recsys never imports scale (which imports recsys)
        train_log = distributed.train(net, known, feats, epochs=epochs or cfg.epochs, eval_fn=eval_fn)
    else:
        train_log = train_net(net, known, feats, epochs=epochs or cfg.epochs, eval_fn=eval_fn)
    log.info(
        "trained %d epochs (best %s) in %.1fs",
        train_log.epochs,
        train_log.best_epoch,
        time.perf_counter() - t0,
    )
    if cfg.backbone and cfg.fusion is None and vq is None:
        cfg.fusion = 0.5
    fitted = FittedTowers(
        cfg,
        net,
        known,
        feats,
        nodes,
        backbone=backbone,
        text_basis=text_basis,
        titles=titles,
        domains=domains,
        scale=scale,
        ref_time=ref_time,
        profile_nodes={u: cited_nodes(p) for u, p in pmap.items()},
        categories=categories,
        transitions=transitions,
        train_log=train_log,
        backbone_choice=backbone_choice,
        encoder=encoder,
    )
    if cfg.backbone and cfg.fusion is None and vq is not None:
        fitted, _ = tune_fusion(fitted, vq, targets, feats=feats.take(rows))
    if cfg.backbone:
        log.info("fusion with the backbone: %s", fitted.config.fusion)
    return fitted


def _fit_backbone(
    cfg: TwoTowerConfig,
    known: Histories,
    weights: ItemWeights | None,
    vq: Histories | None,
    targets: list[np.ndarray],
) -> tuple[Backbone, dict[str, Any] | None]:
    """The configured backbone, or with ``backbone_kind="auto"`` the best of the grid on valid
    (``cfg`` then records what was chosen)."""
    t0 = time.perf_counter()
    weights = weights if weights is not None else ItemWeights(known)
    choice: dict[str, Any] | None = None
    backbone: Backbone
    if cfg.backbone_kind == "auto" and vq is not None and vq.n_users:
        backbone, choice = choose_backbone(
            weights,
            vq,
            targets,
            keep=cfg.ease_keep,
            sequential=cfg.backbone_sasrec,
            seed=cfg.seed,
            sasrec=cfg.sasrec,
        )
        cfg.backbone_kind = backbone.kind
        if isinstance(backbone, SequenceBackbone):
            cfg.sasrec_epochs = backbone.epochs
        else:
            cfg.recency_decay = backbone.decay
            if backbone.kind == "ease":
                cfg.ease_lambda = float(backbone.param)
            else:
                cfg.knn_k = int(backbone.param)
    elif cfg.backbone_kind == "sasrec":
        backbone = SequenceBackbone(weights.sasrec(cfg.seed, epochs=cfg.sasrec_epochs, config=cfg.sasrec))
    else:
        kind = "ease" if cfg.backbone_kind == "auto" else cfg.backbone_kind
        param = cfg.ease_lambda if kind == "ease" else cfg.knn_k
        backbone = ItemItemBackbone.fit(known, kind, param, cfg.recency_decay, cfg.ease_keep, weights)
    log.info("backbone %s: %.1fs", backbone.describe(), time.perf_counter() - t0)
    return backbone, choice


def _fit_text(
    cfg: TwoTowerConfig, encoder: LazyEncoder, catalog: Catalog | None, known: Histories
) -> tuple[np.ndarray, np.ndarray | None]:
    """Item text vectors reduced by SVD, and the basis (sets ``cfg.text_dim``; 0 without text)."""
    if not (cfg.use_item_text or reads(cfg, "text")) or catalog is None:
        cfg.text_dim = 0
        return np.zeros((known.n_items, 1), dtype=np.float32), None
    from sklearn.decomposition import TruncatedSVD

    x = encoder.get().encode(item_texts(known.item_ids, catalog))
    r = max(1, min(128, x.shape[1] - 1, known.n_items - 1))
    svd = TruncatedSVD(n_components=r, random_state=cfg.seed).fit(x)
    basis = svd.components_.T.astype(np.float32)
    cfg.text_dim = r
    red = x @ basis
    return (red / (np.linalg.norm(red, axis=1, keepdims=True) + 1e-9)).astype(np.float32), basis


@dataclass
class ValidProbe:
    """Valid NDCG@20 of a network's tower scores: ``probe(net)``, picklable for Ray Train workers."""

    query: Histories
    feats: UserFeatures
    targets: list[np.ndarray]

    def __call__(self, net: Any) -> float:
        import torch

        with torch.no_grad():
            scores = (tower_vectors(net, self.query, self.feats) @ net.item_vectors().T).cpu().numpy()
        return mean_ndcg(scores, self.query, self.targets)


def mean_ndcg(scores: np.ndarray, query: Histories, targets: Sequence[np.ndarray], k: int = 20) -> float:
    """Mean NDCG@``k`` of ``scores`` (seen items left out) against ``targets``."""
    from .baselines import rank

    ranked = rank(scores, query, k)
    return (
        float(np.mean([ndcg_at_k(r, t, k) for r, t in zip(ranked, targets, strict=True)]))
        if len(targets)
        else 0.0
    )


__all__ = [
    "ValidProbe",
    "as_histories",
    "cited_nodes",
    "fit_towers",
    "mean_ndcg",
    "profile_map",
    "reads",
]
