"""The two-tower recommender SDK: fit, recommend, explain, similar items, save and load.

:class:`TwoTower` fuses the learned two-tower score with an EASE item-item
backbone over the recency-weighted history (:mod:`interests.recsys.backbone`)::

    final(u, i) = (1 - fusion) * z_u(backbone(u, i)) + fusion * z_u(u . v_i)

where ``z_u`` standardises a score over the whole catalogue for that user and
``fusion`` is chosen on the valid split (``backbone=False`` gives the pure
two-tower). Fitting is :mod:`interests.recsys.fit`; what it produces is a
:class:`~interests.recsys.towers.FittedTowers` (``model.state``), which scores;
this class turns scores into lists (:mod:`interests.recsys.lists`). Saved
models are a folder: ``config.json`` (the :class:`TwoTowerConfig` plus
vocabularies) and ``model.safetensors`` (weights, backbone, user features);
loading never unpickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interests.errors import ConfigError

from .explain import Explanation, explain_score
from .fit import as_histories, fit_towers
from .fusion import choose_fusion, tune_fusion
from .io import FORMAT_VERSION, load_towers, save_towers
from .lists import as_arrays, recommended, steered_row, top_lists
from .metrics import top_k
from .model import TwoTowerConfig
from .select import fit_two_tower
from .steer import NodeIndex, Resolved, Steering
from .towers import FittedTowers

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.scale.ray_train import RayTraining
    from interests.schema import InterestProfile
    from interests.taxonomy.model import Taxonomy

    from .backbone import ItemWeights
    from .data import Histories
    from .features import UserFeatures
    from .train import TrainLog


class TwoTower:
    """Two-tower recommender over profiles, taxonomy, L3 features and histories, fused with EASE.

    ``TwoTower(config, **overrides)`` is an untrained model; :meth:`fit` (or :meth:`load`)
    gives it its :attr:`state`, a :class:`~interests.recsys.towers.FittedTowers`.
    """

    def __init__(self, config: TwoTowerConfig | None = None, **overrides: Any) -> None:
        cfg = config or TwoTowerConfig()
        self.spec = TwoTowerConfig.from_dict({**cfg.to_dict(), **overrides})
        self.fitted: FittedTowers | None = None

    @classmethod
    def of(cls, fitted: FittedTowers) -> TwoTower:
        """The recommender over an already fitted state."""
        model = cls(fitted.config)
        model.fitted = fitted
        return model

    @property
    def state(self) -> FittedTowers:
        """What fitting produced; a :class:`ConfigError` before :meth:`fit` or :meth:`load`."""
        if self.fitted is None:
            raise ConfigError("the model is not trained: call fit() or TwoTower.load(folder)")
        return self.fitted

    @property
    def config(self) -> TwoTowerConfig:
        """The fitted config (sizes and choices filled in), or the one given before fitting."""
        return self.fitted.config if self.fitted is not None else self.spec

    # ---- what training recorded -----------------------------------------------------------------
    @property
    def known(self) -> Histories:
        """The training histories (the users and items the model knows)."""
        return self.state.known

    @property
    def train_log(self) -> TrainLog:
        log = self.state.train_log
        if log is None:
            raise ConfigError("this model has no training log")
        return log

    @property
    def fusion_choice(self) -> dict[str, float] | None:
        return self.state.fusion_choice

    @property
    def backbone_choice(self) -> dict[str, Any] | None:
        return self.state.backbone_choice

    @property
    def input_choice(self) -> dict[str, Any] | None:
        return self.state.input_choice

    @property
    def forgotten(self) -> dict[str, Any] | None:
        return self.state.forgotten

    @property
    def node_index(self) -> NodeIndex:
        """Every node the model can be steered to (taxonomy domains and topics, catalogue categories)."""
        return self.state.node_index

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
        self.fitted = fit_towers(
            self.spec,
            data,
            catalog=catalog,
            profiles=profiles,
            taxonomy=taxonomy,
            valid=valid,
            item_weights=item_weights,
            epochs=epochs,
            distributed=distributed,
        )
        return self

    def tune_fusion(
        self,
        query: Histories,
        targets: Sequence[np.ndarray],
        *,
        profiles: Mapping[str, InterestProfile] | None = None,
        feats: UserFeatures | None = None,
        **kwargs: Any,
    ) -> dict[float, float]:
        """Choose ``fusion`` on held-out ``targets`` (:func:`~interests.recsys.fit.tune_fusion`);
        returns the grid's NDCG@20."""
        self.fitted, grid = tune_fusion(self.state, query, targets, profiles=profiles, feats=feats, **kwargs)
        return grid

    # ---- scoring and recommending --------------------------------------------------------------
    def score(
        self,
        query: Histories,
        *,
        profiles: Mapping[str, InterestProfile] | None = None,
        texts: Mapping[str, str] | None = None,
        feats: UserFeatures | None = None,
    ) -> np.ndarray:
        """Fused scores ``[users, items]`` for query users from their own histories and profiles."""
        return self.state.score(query, profiles=profiles, texts=texts, feats=feats)

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
            fitted = self.state
            one = isinstance(user_ids, str)
            rows = fitted.rows([user_ids] if isinstance(user_ids, str) else list(user_ids))
            query = fitted.known.take(rows)
            scores = fitted.score(query, feats=fitted.feats.take(rows))
            items, vals = top_lists(fitted, scores, query if filter_seen else None, k, diverse)
            return (items[0], vals[0]) if one else (items, vals)
        lists = self.recommend_items(
            user_ids, k, filter_seen=filter_seen, diverse=diverse, steer=steering, explore=explore
        )
        if isinstance(user_ids, str):
            one_ids, one_vals = as_arrays([lists])
            return one_ids[0], one_vals[0]
        return as_arrays(lists)

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
        fitted = self.state
        resolved = Resolved.of(_steering(steer, domains, topics, avoid, mix), fitted.node_index)
        one = isinstance(user_ids, str)
        rows = fitted.rows([user_ids] if isinstance(user_ids, str) else list(user_ids))
        query = fitted.known.take(rows)
        feats = fitted.feats.take(rows)
        scores = fitted.score(query, feats=feats)
        out = []
        for r in range(len(rows)):
            row = scores[r].astype(np.float32, copy=True)
            if filter_seen:
                row[query.items[r]] = -np.inf
            f = feats.take([r])
            picks = steered_row(
                fitted, row, query.items[r], f, k, steer=resolved, explore=explore, diverse=diverse
            )
            out.append(recommended(fitted, picks, query.take([r]), f))
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
        fitted = self.state
        query = fitted.known.with_users([user_id], [list(items)])
        feats = fitted.features(
            query,
            {user_id: profile} if profile is not None else None,
            {user_id: text} if text else None,
        )
        scores = fitted.score(query, feats=feats)
        steering = _steering(steer, domains, topics, avoid, mix)
        if not (steering.active or explore > 0 or as_items):
            out_items, vals = top_lists(fitted, scores, query, k, diverse)
            return out_items[0], vals[0]
        row = scores[0].astype(np.float32, copy=True)
        row[query.items[0]] = -np.inf
        resolved = Resolved.of(steering, fitted.node_index)
        picks = steered_row(
            fitted, row, query.items[0], feats, k, steer=resolved, explore=explore, diverse=diverse
        )
        recs = recommended(fitted, picks, query, feats)
        if as_items:
            return recs
        ids, vals = as_arrays([recs])
        return ids[0], vals[0]

    def similar_items(self, item_id: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items whose item-tower vectors are closest (cosine) to ``item_id``'s."""
        fitted = self.state
        if item_id not in fitted.known.item_index:
            raise ConfigError(f"unknown item {item_id!r}")
        v = fitted.item_vecs.numpy()
        v = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)
        j = fitted.known.item_index[item_id]
        sim = v @ v[j]
        sim[j] = -np.inf
        top = top_k(sim[None, :], k)[0]
        return np.array([fitted.known.item_ids[t] for t in top], dtype=object), sim[top].astype(np.float32)

    def explain(self, user_id: str, item_id: str, *, top: int = 5) -> Explanation:
        """The exact parts of ``user_id``'s fused score of ``item_id`` (:func:`explain_score`)."""
        fitted = self.state
        rows = fitted.rows([user_id])
        return explain_score(fitted, fitted.known.take(rows), fitted.feats.take(rows), user_id, item_id)

    # ---- disk ---------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the model folder (:mod:`interests.recsys.io`)."""
        return save_towers(self.state, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> TwoTower:
        """The model saved in ``directory``."""
        return cls.of(load_towers(Path(directory)))


def _steering(steer: Steering | None, domains: Any, topics: Any, avoid: Any, mix: Any) -> Steering:
    if steer is not None:
        if domains or topics or avoid or mix:
            raise ConfigError("give either steer=Steering(...) or domains/topics/avoid/mix, not both")
        return steer
    return Steering.of(domains, topics, avoid, mix)


__all__ = [
    "FORMAT_VERSION",
    "Explanation",
    "FittedTowers",
    "TwoTower",
    "as_histories",
    "choose_fusion",
    "fit_two_tower",
]
