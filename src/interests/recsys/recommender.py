"""The two-tower recommender SDK: fit, recommend, explain, similar items, save and load.

:class:`TwoTower` fuses the learned two-tower score with an EASE item-item
backbone over the recency-weighted history (:mod:`interests.recsys.backbone`)::

    final(u, i) = (1 - fusion) * z_u(backbone(u, i)) + fusion * z_u(u . v_i)

where ``z_u`` standardises a score over the whole catalogue for that user and
``fusion`` is chosen on the valid split (``backbone=False`` gives the pure
two-tower). Saved models are a folder: ``config.json`` (the
:class:`TwoTowerConfig` plus vocabularies) and ``model.safetensors`` (weights,
backbone, user features); loading never unpickles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interests.errors import ConfigError

from ..stats import rating_scale
from .backbone import Backbone, ItemItemBackbone, ItemWeights, SequenceBackbone, choose_backbone
from .data import Histories, from_user_histories, item_domains
from .explain import Explanation, explain_score
from .features import (
    FeatureInputs,
    ItemNodes,
    UserFeatures,
    feature_group,
    get_text_encoder,
    item_texts,
    user_features,
)
from .io import FORMAT_VERSION, load_model, save_model
from .metrics import ndcg_at_k, top_k
from .model import TwoTowerConfig
from .rerank import mmr_rerank
from .steer import ItemCategories, NodeIndex, Pick, Recommended, Resolved, Steering, pick

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.scale.ray_train import RayTraining
    from interests.schema import InterestProfile
    from interests.taxonomy.model import Taxonomy

log = logging.getLogger(__name__)

#: how many standard errors the valid gain over the backbone must exceed (see :func:`choose_fusion`)
FUSION_MARGIN = 2.0


def _as_histories(data: Any) -> tuple[Histories, Catalog | None]:
    if isinstance(data, Histories):
        return data, None
    histories = getattr(data, "histories", data)
    return from_user_histories(histories), getattr(data, "catalog", None)


def _z(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True) + 1e-9
    return (s - mu) / sd, mu, sd


class TwoTower:
    """Two-tower recommender over profiles, taxonomy, L3 features and histories, fused with EASE."""

    def __init__(self, config: TwoTowerConfig | None = None, **overrides: Any) -> None:
        cfg = config or TwoTowerConfig()
        self.config = TwoTowerConfig.from_dict({**cfg.to_dict(), **overrides})
        self.net: Any = None
        self.backbone: Backbone | None = None
        self.backbone_choice: dict[str, Any] | None = None  # what choose_backbone saw and chose
        self.known: Histories | None = None
        self.feats: UserFeatures | None = None
        self.nodes: ItemNodes | None = None
        self.text_basis: np.ndarray | None = None
        self.titles: list[str] = []
        self.domains = np.zeros(0, dtype=np.int64)
        self.scale: tuple[float, float] | None = None
        self.ref_time: float | None = None
        self.profile_nodes: dict[str, dict[str, str]] = {}
        self.forgotten: dict[str, Any] | None = None  # set by `interests forget`: see recsys.forget_rows
        self.categories: ItemCategories | None = None  # every catalogue category of every item
        self.transitions: Any = None  # explore.Transitions between domains, from the training histories
        self._node_index: NodeIndex | None = None
        self.train_log: Any = None
        self.fusion_choice: dict[str, float] | None = None  # what tune_fusion saw and chose
        self.input_choice: dict[str, Any] | None = None  # what select_inputs saw and chose
        self._encoder: Any = None
        self._item_vecs: Any = None  # item-tower output, cached once training is over
        self._frozen = False

    # ---- fitting -------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        *,
        catalog: Catalog | None = None,
        profiles: Sequence[InterestProfile] | Mapping[str, InterestProfile] | None = None,
        taxonomy: Taxonomy | None = None,
        valid: Mapping[str, Sequence[str]] | None = None,
        item_weights: ItemWeights | None = None,
        epochs: int | None = None,
        distributed: RayTraining | None = None,
    ) -> TwoTower:
        """Train on ``data`` (``Logs``, ``{user: UserHistory}`` or :class:`Histories`).

        ``valid`` maps users to held-out items: training stops early on their
        NDCG@20, ``fusion`` is tuned on it when the config leaves it ``None``
        and the backbone is chosen on it when ``backbone_kind`` is ``"auto"``
        (:func:`~interests.recsys.backbone.choose_backbone`; EASE without ``valid``).
        ``item_weights`` reuses item-item matrices already fit on the same data.
        ``distributed`` trains the network on Ray Train workers
        (:class:`~interests.scale.RayTraining`, ``pip install 'interests[ray]'``).
        """
        import torch

        from .model import TwoTowerNet
        from .train import train_net

        known, cat = _as_histories(data)
        catalog = catalog if catalog is not None else cat
        cfg = self.config
        # inputs switched off are not looked at: an ablation is the model that never had them
        # (a taxonomy would still size the node embeddings and so change the random init)
        if not (cfg.use_item_nodes or self._reads("taxonomy")):
            taxonomy = None
        if not self._reads("profiles"):
            profiles = None
        torch.manual_seed(cfg.seed)
        self.known = known
        cfg.n_items = known.n_items
        self.titles = [catalog.get_item(i).label() if catalog is not None else i for i in known.item_ids]
        self.nodes = (
            ItemNodes.from_taxonomy(taxonomy, known.item_ids, catalog)
            if taxonomy is not None
            else ItemNodes.empty(known.n_items)
        )
        assign = (
            taxonomy.assign_items([catalog.get_item(i) for i in known.item_ids])
            if (taxonomy is not None and catalog is not None)
            else None
        )
        self.domains = item_domains(known.item_ids, catalog, assign)
        self._fit_steering(known, catalog)
        cfg.n_domains, cfg.n_topics = self.nodes.n_domains, self.nodes.n_topics
        ratings = np.concatenate(known.ratings) if known.items else np.zeros(0)
        self.scale = rating_scale(ratings)
        times = np.concatenate(known.times) if known.items else np.zeros(0)
        times = times[~np.isnan(times)]
        self.ref_time = float(times.max()) if len(times) else None
        pmap = _profile_map(profiles)
        log.info(
            "two-tower: %d users, %d items, %d profiles, %s",
            known.n_users,
            known.n_items,
            len(pmap),
            "a taxonomy" if taxonomy is not None else "no taxonomy",
        )
        t0 = time.perf_counter()
        self.profile_nodes = {u: _cited_nodes(p) for u, p in pmap.items()}
        item_x = self._fit_text(catalog, known)
        self.feats = self._features(
            known, pmap, cold_n=cfg.cold_context if cfg.cold_context_prob > 0 else None
        )
        net = TwoTowerNet(cfg)
        if cfg.text_dim:
            net.item_text.copy_(torch.tensor(item_x))  # type: ignore[operator]
        if cfg.n_topics:
            net.item_dom.copy_(  # type: ignore[operator]
                torch.tensor(np.where(self.nodes.domain >= 0, self.nodes.domain, cfg.n_domains))
            )
            net.item_topic.copy_(  # type: ignore[operator]
                torch.tensor(np.where(self.nodes.topic >= 0, self.nodes.topic, cfg.n_topics))
            )
        self.net = net
        log.info("features and item text ready (%.1fs)", time.perf_counter() - t0)
        eval_fn: ValidProbe | None = None
        vq: Histories | None = None
        targets: list[np.ndarray] = []
        if valid:
            uidx = known.user_index()
            rows = [uidx[u] for u in valid if u in uidx]
            vq = known.take(rows)
            targets = [
                np.array([known.item_index[i] for i in valid[known.user_ids[r]] if i in known.item_index])
                for r in rows
            ]
            eval_fn = ValidProbe(vq, self.feats.take(rows), targets)
        if cfg.backbone:
            self._fit_backbone(known, item_weights, vq, targets)

        self._item_vecs, self._frozen = None, False
        t0 = time.perf_counter()
        if distributed is not None:
            # the spec trains itself: recsys never imports scale (which imports recsys)
            self.train_log = distributed.train(
                net, known, self.feats, epochs=epochs or cfg.epochs, eval_fn=eval_fn
            )
        else:
            self.train_log = train_net(net, known, self.feats, epochs=epochs or cfg.epochs, eval_fn=eval_fn)
        log.info(
            "trained %d epochs (best %s) in %.1fs",
            self.train_log.epochs,
            self.train_log.best_epoch,
            time.perf_counter() - t0,
        )
        self._frozen = True
        if cfg.backbone and cfg.fusion is None:
            if vq is not None:
                self.tune_fusion(vq, targets, feats=self.feats.take(rows))
            else:
                cfg.fusion = 0.5
            log.info("fusion with the backbone: %s", cfg.fusion)
        return self

    def _fit_backbone(
        self, known: Histories, weights: ItemWeights | None, vq: Histories | None, targets: list[np.ndarray]
    ) -> None:
        """The configured backbone, or with ``backbone_kind="auto"`` the best of the grid on valid."""
        cfg = self.config
        t0 = time.perf_counter()
        weights = weights if weights is not None else ItemWeights(known)
        if cfg.backbone_kind == "auto" and vq is not None and vq.n_users:
            self.backbone, self.backbone_choice = choose_backbone(
                weights,
                vq,
                targets,
                keep=cfg.ease_keep,
                sequential=cfg.backbone_sasrec,
                seed=cfg.seed,
                sasrec=cfg.sasrec,
            )
            cfg.backbone_kind = self.backbone.kind
            if isinstance(self.backbone, SequenceBackbone):
                cfg.sasrec_epochs = self.backbone.epochs
            else:
                cfg.recency_decay = self.backbone.decay
                if self.backbone.kind == "ease":
                    cfg.ease_lambda = float(self.backbone.param)
                else:
                    cfg.knn_k = int(self.backbone.param)
        elif cfg.backbone_kind == "sasrec":
            m = weights.sasrec(cfg.seed, epochs=cfg.sasrec_epochs, config=cfg.sasrec)
            self.backbone = SequenceBackbone(m)
        else:
            kind = "ease" if cfg.backbone_kind == "auto" else cfg.backbone_kind
            param = cfg.ease_lambda if kind == "ease" else cfg.knn_k
            self.backbone = ItemItemBackbone.fit(
                known, kind, param, cfg.recency_decay, cfg.ease_keep, weights
            )
        log.info("backbone %s: %.1fs", self.backbone.describe(), time.perf_counter() - t0)

    def _reads(self, what: str) -> bool:
        """Whether a user group switched on reads ``what`` (``profiles``, ``taxonomy``, ``text``)."""
        return any(what in g.reads and g.on(self.config) for g in map(feature_group, self.config.user_groups))

    def _fit_text(self, catalog: Catalog | None, known: Histories) -> np.ndarray:
        cfg = self.config
        if not (cfg.use_item_text or self._reads("text")) or catalog is None:
            cfg.text_dim, self.text_basis = 0, None
            return np.zeros((known.n_items, 1), dtype=np.float32)
        from sklearn.decomposition import TruncatedSVD

        x = self.encoder.encode(item_texts(known.item_ids, catalog))
        r = max(1, min(128, x.shape[1] - 1, known.n_items - 1))
        svd = TruncatedSVD(n_components=r, random_state=cfg.seed).fit(x)
        self.text_basis = svd.components_.T.astype(np.float32)
        cfg.text_dim = r
        red = x @ self.text_basis
        return (red / (np.linalg.norm(red, axis=1, keepdims=True) + 1e-9)).astype(np.float32)

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = get_text_encoder(self.config.encoder)
        return self._encoder

    def _features(
        self,
        query: Histories,
        profiles: Mapping[str, InterestProfile] | None,
        texts: Mapping[str, str] | None = None,
        cold_n: int | None = None,
    ) -> UserFeatures:
        assert self.nodes is not None
        x = FeatureInputs(
            query,
            self.nodes,
            profiles or {},
            texts or {},
            encoder=self.encoder if (self.config.text_dim and (profiles or texts)) else None,
            text_basis=self.text_basis,
            scale=self.scale,
            ref_time=self.ref_time,
        )
        return user_features(x, [feature_group(n) for n in self.config.user_groups], cold_n=cold_n)

    # ---- scoring -------------------------------------------------------------------------------
    def _hist_tensor(self, query: Histories) -> Any:
        return history_tensor(query, self.config.max_history)

    def _user_vecs(self, query: Histories, feats: UserFeatures) -> Any:
        import torch

        with torch.no_grad():
            if self._item_vecs is None or not self._frozen:
                vecs = self.net.item_vectors()
                if self._frozen:
                    self._item_vecs = vecs
            else:
                vecs = self._item_vecs
        return tower_vectors(self.net, query, feats, item_vecs=vecs), vecs

    def _tower_scores(self, query: Histories, feats: UserFeatures) -> np.ndarray:
        u, vecs = self._user_vecs(query, feats)
        return (u @ vecs.T).numpy()

    def score(
        self,
        query: Histories,
        *,
        profiles: Mapping[str, InterestProfile] | None = None,
        texts: Mapping[str, str] | None = None,
        feats: UserFeatures | None = None,
    ) -> np.ndarray:
        """Fused scores ``[users, items]`` for query users from their own histories and profiles."""
        self._check()
        f = feats if feats is not None else self._features(query, profiles, texts)
        tw = self._tower_scores(query, f)
        if self.backbone is None:
            return tw
        a = 0.5 if self.config.fusion is None else self.config.fusion
        return (1 - a) * _z(self.backbone.score(query))[0] + a * _z(tw)[0]

    def tune_fusion(
        self,
        query: Histories,
        targets: Sequence[np.ndarray],
        *,
        profiles: Mapping[str, InterestProfile] | None = None,
        feats: UserFeatures | None = None,
        grid: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0),
        margin: float = FUSION_MARGIN,
    ) -> dict[float, float]:
        """Choose ``fusion`` on held-out ``targets`` (:func:`choose_fusion`); returns the grid's NDCG@20.

        The backbone alone (``fusion=0``) is kept unless the best grid value beats it by more
        than ``margin`` standard errors of the paired per-user NDCG@20 difference.
        """
        assert self.backbone is not None
        from .baselines import user_ndcg

        f = feats if feats is not None else self._features(query, profiles)
        zt, zb = _z(self._tower_scores(query, f))[0], _z(self.backbone.score(query))[0]
        per_user = {a: user_ndcg((1 - a) * zb + a * zt, query, targets) for a in grid}
        choice = choose_fusion(per_user, margin=margin)
        self.config.fusion = choice["fusion"]
        self.fusion_choice = choice
        log.info(
            "fusion: best on valid %s (gain over the backbone %+.4f, standard error %.4f): chose %s",
            choice["best"],
            choice["gain"],
            choice["se"],
            choice["fusion"],
        )
        return {a: float(v.mean()) if len(v) else 0.0 for a, v in per_user.items()}

    # ---- recommending --------------------------------------------------------------------------
    def _rows(self, user_ids: Sequence[str]) -> list[int]:
        assert self.known is not None
        idx = self.known.user_index()
        missing = [u for u in user_ids if u not in idx]
        if missing:
            raise ConfigError(
                f"unknown user {missing[0]!r}: use recommend_new(items=..., profile=..., "
                "text=...) for users the model was not trained on"
            )
        return [idx[u] for u in user_ids]

    def recommend(
        self,
        user_ids: str | Sequence[str],
        k: int = 10,
        *,
        filter_seen: bool = True,
        diverse: float = 0.0,
        steer: Steering | None = None,
        explore: int = 0,
        domains: str | Sequence[str] | None = None,
        topics: str | Sequence[str] | None = None,
        avoid: str | Sequence[str] | None = None,
        mix: str | Mapping[str, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids and scores for one user (1-D arrays) or many (2-D).

        Steering (:mod:`interests.recsys.steer`): ``domains``/``topics`` draw the list from
        those nodes of the hierarchy, ``avoid`` leaves nodes out, ``mix`` gives shares per
        node (``"jazz=0.6,sci-fi=0.4"``); or pass a :class:`~interests.recsys.steer.Steering`
        as ``steer``. ``explore``: that many last slots go to domains the user has not
        touched (:mod:`interests.recsys.explore`). :meth:`recommend_items` gives the same
        list with each item's node and source.
        """
        steering = _steering(steer, domains, topics, avoid, mix)
        if not (steering.active or explore > 0):
            self._check()
            assert self.known is not None and self.feats is not None
            one = isinstance(user_ids, str)
            ids = [user_ids] if isinstance(user_ids, str) else list(user_ids)
            rows = self._rows(ids)
            query = self.known.take(rows)
            scores = self.score(query, feats=self.feats.take(rows))
            items, vals = self._top(scores, query if filter_seen else None, k, diverse)
            return (items[0], vals[0]) if one else (items, vals)
        lists = self.recommend_items(
            user_ids, k, filter_seen=filter_seen, diverse=diverse, steer=steering, explore=explore
        )
        if isinstance(user_ids, str):
            one_ids, one_vals = _arrays([lists])
            return one_ids[0], one_vals[0]
        return _arrays(lists)

    def recommend_items(
        self,
        user_ids: str | Sequence[str],
        k: int = 10,
        *,
        filter_seen: bool = True,
        diverse: float = 0.0,
        steer: Steering | None = None,
        explore: int = 0,
        domains: str | Sequence[str] | None = None,
        topics: str | Sequence[str] | None = None,
        avoid: str | Sequence[str] | None = None,
        mix: str | Mapping[str, float] | None = None,
    ) -> Any:
        """:meth:`recommend` as :class:`~interests.recsys.steer.Recommended` items (one list, or
        a list per user): each with its score, title, the node it came from (``Domain > Topic``
        or the catalogue category) and its source (``history``, ``profile``, ``steering`` or
        ``exploration``)."""
        self._check()
        assert self.known is not None and self.feats is not None
        steering = _steering(steer, domains, topics, avoid, mix)
        resolved = Resolved.of(steering, self.node_index)
        one = isinstance(user_ids, str)
        ids = [user_ids] if isinstance(user_ids, str) else list(user_ids)
        rows = self._rows(ids)
        query = self.known.take(rows)
        feats = self.feats.take(rows)
        scores = self.score(query, feats=feats)
        out = []
        for r in range(len(rows)):
            row = scores[r].astype(np.float32, copy=True)
            if filter_seen:
                row[query.items[r]] = -np.inf
            picks = self.steered_row(
                row, query.items[r], feats.take([r]), k, steer=resolved, explore=explore, diverse=diverse
            )
            out.append(self._recommended(picks, query.take([r]), feats.take([r])))
        return out[0] if one else out

    def recommend_new(
        self,
        items: Sequence[str] = (),
        *,
        profile: InterestProfile | None = None,
        text: str | None = None,
        k: int = 10,
        diverse: float = 0.0,
        user_id: str = "new",
        steer: Steering | None = None,
        explore: int = 0,
        domains: str | Sequence[str] | None = None,
        topics: str | Sequence[str] | None = None,
        avoid: str | Sequence[str] | None = None,
        mix: str | Mapping[str, float] | None = None,
        as_items: bool = False,
    ) -> Any:
        """Cold start: a user given by a few item ids, a profile and/or a text description.

        Steering and ``explore`` as in :meth:`recommend`; ``as_items=True`` returns
        :class:`~interests.recsys.steer.Recommended` items instead of ``(ids, scores)``.
        """
        self._check()
        assert self.known is not None
        query = self.known.with_users([user_id], [list(items)])
        feats = self._features(
            query,
            {user_id: profile} if profile is not None else None,
            {user_id: text} if text else None,
        )
        scores = self.score(query, feats=feats)
        steering = _steering(steer, domains, topics, avoid, mix)
        if not (steering.active or explore > 0 or as_items):
            out_items, vals = self._top(scores, query, k, diverse)
            return out_items[0], vals[0]
        row = scores[0].astype(np.float32, copy=True)
        row[query.items[0]] = -np.inf
        picks = self.steered_row(
            row,
            query.items[0],
            feats,
            k,
            steer=Resolved.of(steering, self.node_index),
            explore=explore,
            diverse=diverse,
        )
        recs = self._recommended(picks, query, feats)
        if as_items:
            return recs
        ids, vals = _arrays([recs])
        return ids[0], vals[0]

    # ---- steering and exploration (interests.recsys.steer, interests.recsys.explore) -----------
    def _fit_steering(self, known: Histories, catalog: Catalog | None) -> None:
        """Catalogue categories of every item, and the domain transitions of the training users."""
        from .explore import Transitions

        self.categories = ItemCategories.from_catalog(known.item_ids, catalog)
        self._node_index = None
        dom, names = self.explore_domains()
        self.transitions = Transitions.fit(known.items, dom, len(names))

    @property
    def node_index(self) -> NodeIndex:
        """Every node the model can steer to (taxonomy domains and topics, catalogue categories)."""
        if self._node_index is None:
            self._node_index = NodeIndex.of(self)
        return self._node_index

    def explore_domains(self) -> tuple[np.ndarray, list[str]]:
        """``(domain index of every item or -1, domain names)``: what exploration chooses among."""
        return self.node_index.domain_space(self.domains)

    def explore_transitions(self) -> Any:
        """The domain transitions (:class:`~interests.recsys.explore.Transitions`); a model saved
        without them rebuilds them once from its saved training histories."""
        from .explore import Transitions

        if self.transitions is None and self.known is not None:
            dom, names = self.explore_domains()
            self.transitions = Transitions.fit(self.known.items, dom, len(names))
        return self.transitions

    def steered_row(
        self,
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
            dom, names = self.explore_domains()
            n_dom = len(names)
            avail = np.isfinite(scores) & ~steer.avoid_mask(len(scores)) & (dom >= 0)
            blocked = np.bincount(dom[avail], minlength=n_dom) == 0
            pw = None
            if feats is not None and self.nodes is not None and self.nodes.n_domains:
                pw = np.asarray(feats["taxonomy"][0, : self.nodes.n_domains], dtype=np.float64)
            order, _ = explore_order(
                self.explore_transitions(),
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
            index=self.node_index,
            steer=steer,
            domains=self.domains,
            diverse=diverse,
            explore=slots,
        )

    def _recommended(self, picks: list[Pick], query: Histories, feats: UserFeatures) -> list[Recommended]:
        """Picks as :class:`Recommended` items; model picks get ``history`` or ``profile``."""
        from .explain import pick_sources

        assert self.known is not None
        model_items = [p.item for p in picks if p.source == "model"]
        src = dict(zip(model_items, pick_sources(self, query, feats, model_items), strict=True))
        return [
            Recommended(
                self.known.item_ids[p.item],
                p.score,
                self.titles[p.item] if p.item < len(self.titles) else "",
                p.node,
                src.get(p.item, "history") if p.source == "model" else p.source,
            )
            for p in picks
        ]

    def _top(
        self, scores: np.ndarray, exclude: Histories | None, k: int, diverse: float
    ) -> tuple[np.ndarray, np.ndarray]:
        assert self.known is not None
        s = scores.astype(np.float32, copy=True)
        if exclude is not None:
            for r, items in enumerate(exclude.items):
                s[r, items] = -np.inf
        pool = k if diverse <= 0 else min(s.shape[1], max(5 * k, 50))
        top = top_k(s, pool)
        out_i, out_s = [], []
        for r in range(len(s)):
            cand = top[r][np.isfinite(s[r, top[r]])]
            items, vals = mmr_rerank(cand, s[r, cand], self.domains, k, diverse)
            out_i.append([self.known.item_ids[j] for j in items])
            out_s.append(vals)
        width = max((len(x) for x in out_i), default=0)
        ids = np.array([x + [""] * (width - len(x)) for x in out_i], dtype=object)
        sc = np.array(
            [np.pad(v, (0, width - len(v)), constant_values=-np.inf) for v in out_s], dtype=np.float32
        )
        return ids, sc

    def similar_items(self, item_id: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items whose item-tower vectors are closest (cosine) to ``item_id``'s."""
        import torch

        self._check()
        assert self.known is not None
        if item_id not in self.known.item_index:
            raise ConfigError(f"unknown item {item_id!r}")
        with torch.no_grad():
            v = self.net.item_vectors().numpy()
        v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)
        j = self.known.item_index[item_id]
        sim = v @ v[j]
        sim[j] = -np.inf
        top = top_k(sim[None, :], k)[0]
        return np.array([self.known.item_ids[t] for t in top], dtype=object), sim[top].astype(np.float32)

    def explain(self, user_id: str, item_id: str, *, top: int = 5) -> Explanation:

        self._check()
        return explain_score(self, user_id, item_id, top=top)

    def _check(self) -> None:
        if self.net is None:
            raise ConfigError("the model is not trained: call fit() or TwoTower.load(folder)")

    # ---- disk ---------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:

        self._check()
        return save_model(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> TwoTower:

        return load_model(cls, Path(directory))


def fit_two_tower(
    logs: Any,
    *,
    catalog: Catalog | None = None,
    profiles: Sequence[InterestProfile] | Mapping[str, InterestProfile] | None = None,
    taxonomy: Taxonomy | None = None,
    holdout: bool = True,
    distributed: RayTraining | None = None,
    select_inputs: bool = True,
    **config: Any,
) -> TwoTower:
    """Train a model the way ``interests train`` does.

    With ``holdout`` the valid events of the temporal split (docs/benchmarks.md) pick the
    backbone (:func:`~interests.recsys.backbone.choose_backbone`: EASE or
    ItemKNN with its parameter and recency decay, or SASRec), the epoch count (early
    stopping) and the fusion weight (:func:`choose_fusion`: the backbone alone
    unless the tower's valid gain exceeds its noise) on a model fit to the
    earlier events; the returned model is then refit on every event with those
    settings. ``select_inputs`` also chooses the user-side input groups on valid
    (:func:`~interests.recsys.select.select_inputs`: a group stays only when it gains
    beyond noise; the record is ``model.input_choice``). Without ``holdout``,
    ``config["epochs"]`` epochs, the configured backbone (EASE when ``"auto"``) and
    ``fusion=0.5``. ``distributed``: every fit on Ray Train workers.
    """
    from .select import candidate_groups
    from .select import select_inputs as _select
    from .split import TemporalSplit

    data, cat = _as_histories(logs)
    catalog = catalog if catalog is not None else cat
    if not holdout:
        return TwoTower(**{"fusion": 0.5, **config}).fit(
            data, catalog=catalog, profiles=profiles, taxonomy=taxonomy, distributed=distributed
        )
    split = TemporalSplit.of(data)
    case = split.case("valid")
    valid = {
        case.fit.user_ids[u]: [data.item_ids[i] for i in t]
        for u, t in zip(case.users, case.targets, strict=True)
    }
    weights = ItemWeights(case.fit)  # shared by the input-selection fits
    fit_args: dict[str, Any] = dict(
        catalog=catalog, profiles=profiles, taxonomy=taxonomy, valid=valid, distributed=distributed
    )
    probe = TwoTower(**config).fit(case.fit, item_weights=weights, **fit_args)
    chosen = {k: getattr(probe.config, k) for k in BACKBONE_KEYS}
    over: dict[str, Any] = {}
    inputs: dict[str, Any] | None = None
    groups = candidate_groups(
        probe.config, profiles=bool(profiles), taxonomy=taxonomy is not None, text=catalog is not None
    )
    if select_inputs and len(groups) > 1:
        pmap = _profile_map(profiles)

        def fit_candidate(off: dict[str, bool]) -> TwoTower:
            return TwoTower(**{**config, **chosen, **off}).fit(case.fit, item_weights=weights, **fit_args)

        def per_user(m: TwoTower) -> np.ndarray:
            from .baselines import user_ndcg

            return user_ndcg(m.score(case.query, profiles=pmap), case.query, case.targets)

        probe, over, inputs = _select(fit_candidate, per_user, groups, full=probe)
    final = TwoTower(**{**config, "fusion": probe.config.fusion, **chosen, **over})
    final.fit(
        data,
        catalog=catalog,
        profiles=profiles,
        taxonomy=taxonomy,
        epochs=max(1, probe.train_log.best_epoch),
        distributed=distributed,
    )
    final.train_log.best_valid = probe.train_log.best_valid
    final.train_log.valid = probe.train_log.valid
    final.fusion_choice = probe.fusion_choice
    final.backbone_choice = probe.backbone_choice
    final.input_choice = inputs
    return final


#: the config fields that say which backbone a model has (chosen on valid, kept by the refit)
BACKBONE_KEYS = ("backbone_kind", "ease_lambda", "knn_k", "recency_decay", "sasrec_epochs")


def choose_fusion(
    per_user: Mapping[float, np.ndarray], *, base: float = 0.0, margin: float = FUSION_MARGIN
) -> dict[str, float]:
    """Pick the fusion weight from per-user valid NDCG@20, moving off ``base`` only on a real gain.

    ``per_user[a]`` holds each valid user's NDCG@20 with fusion ``a`` (same users, same order).
    The best ``a`` by mean (ties: the smaller) is taken only when its paired gain over ``base``
    (the backbone alone), ``mean(d)`` with ``d = per_user[best] - per_user[base]``, exceeds
    ``margin * std(d) / sqrt(n)``; otherwise ``base`` is kept. On a few hundred valid users the
    best of ten grid values beats the backbone by chance alone, and that chance choice cost
    test NDCG@20 on small data sets (issue #15); a margin of 2 standard errors keeps the
    backbone unless the tower's gain is well outside that noise.
    """
    means = {a: float(np.mean(v)) if len(v) else 0.0 for a, v in per_user.items()}
    best = max(means, key=lambda a: (means[a], -a))
    if base not in per_user:
        return {"fusion": best, "best": best, "gain": 0.0, "se": 0.0}
    d = np.asarray(per_user[best], dtype=np.float64) - np.asarray(per_user[base], dtype=np.float64)
    gain = float(d.mean()) if len(d) else 0.0
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")
    chosen = best if (best != base and gain > margin * se) else base
    return {"fusion": chosen, "best": best, "gain": gain, "se": se}


def _steering(steer: Steering | None, domains: Any, topics: Any, avoid: Any, mix: Any) -> Steering:
    if steer is not None:
        if domains or topics or avoid or mix:
            raise ConfigError("give either steer=Steering(...) or domains/topics/avoid/mix, not both")
        return steer
    return Steering.of(domains, topics, avoid, mix)


def _arrays(lists: Sequence[Sequence[Recommended]]) -> tuple[np.ndarray, np.ndarray]:
    """``Recommended`` lists as the ``(ids, scores)`` arrays of :meth:`TwoTower.recommend` (2-D, padded)."""
    width = max((len(x) for x in lists), default=0)
    ids = np.array([[r.item_id for r in x] + [""] * (width - len(x)) for x in lists], dtype=object)
    sc = np.array(
        [[r.score for r in x] + [-np.inf] * (width - len(x)) for x in lists], dtype=np.float32
    ).reshape(len(lists), width)
    return ids.reshape(len(lists), width), sc


def _profile_map(profiles: Any) -> dict[str, InterestProfile]:
    if profiles is None:
        return {}
    if isinstance(profiles, Mapping):
        return dict(profiles)
    return {p.user_id: p for p in profiles}


def _cited_nodes(profile: InterestProfile) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in profile.domains:
        for t in d.topics:
            for i in t.item_ids:
                out.setdefault(i, f"{d.name} > {t.name}")
    return out


def history_tensor(query: Histories, L: int) -> Any:
    """Each user's last ``L`` item indices, right-aligned (most recent last); -1 pads."""
    import torch

    h = np.full((query.n_users, L), -1, dtype=np.int64)
    for r, items in enumerate(query.items):
        tail = items[-L:]
        if len(tail):
            h[r, L - len(tail) :] = tail
    return torch.tensor(h)


def tower_vectors(net: Any, query: Histories, feats: UserFeatures, *, item_vecs: Any = None) -> Any:
    """The user tower's vectors for ``query`` (its last ``max_history`` events) and ``feats``."""
    import torch

    dev = net.user_bias.device
    with torch.no_grad():
        return net.user_vectors(
            history_tensor(query, net.cfg.max_history).to(dev),
            {n: torch.tensor(x, device=dev) for n, x in feats.groups.items()},
            item_vecs=item_vecs if item_vecs is not None else net.item_vectors(),
        )


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
        return _mean_ndcg(scores, self.query, self.targets)


def _mean_ndcg(scores: np.ndarray, query: Histories, targets: Sequence[np.ndarray], k: int = 20) -> float:
    from .baselines import rank

    ranked = rank(scores, query, k)
    return (
        float(np.mean([ndcg_at_k(r, t, k) for r, t in zip(ranked, targets, strict=True)]))
        if len(targets)
        else 0.0
    )


__all__ = ["FORMAT_VERSION", "Explanation", "TwoTower", "choose_fusion", "fit_two_tower"]
