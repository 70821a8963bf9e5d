"""A fitted two-tower model as one typed, frozen value: what fitting produced, and how it scores.

:class:`FittedTowers` is what :func:`~interests.recsys.fit.fit_towers` returns,
what :mod:`interests.recsys.io` saves and loads, and what the recommender
(:class:`~interests.recsys.recommender.TwoTower`), the explanations
(:mod:`interests.recsys.explain`) and the service (:mod:`interests.api`) read,
all through the public fields and methods below. The fused score is::

    final(u, i) = (1 - fusion) * z_u(backbone(u, i)) + fusion * z_u(u . v_i)

where ``z_u`` standardises a score over the whole catalogue for that user.
The fields are never reassigned (a new fusion choice is a new value, made by
:func:`dataclasses.replace`); the item-tower output, the node index, the text
encoder and, for a format 1 folder, the domain transitions are computed once,
on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from interests.errors import ConfigError

from .features import FeatureInputs, ItemNodes, UserFeatures, feature_group, get_text_encoder, user_features
from .model import TwoTowerConfig
from .steer import ItemCategories, NodeIndex

if TYPE_CHECKING:  # pragma: no cover
    from interests.schema import InterestProfile

    from .backbone import Backbone
    from .data import Histories
    from .explore import Transitions
    from .train import TrainLog


class LazyEncoder:
    """The text encoder named by the config, loaded on first use and then shared."""

    def __init__(self, spec: str | None) -> None:
        self.spec = spec
        self.loaded: Any = None

    def get(self) -> Any:
        if self.loaded is None:
            self.loaded = get_text_encoder(self.spec)
        return self.loaded


def build_features(
    cfg: TwoTowerConfig,
    nodes: ItemNodes,
    query: Histories,
    profiles: Mapping[str, InterestProfile] | None = None,
    texts: Mapping[str, str] | None = None,
    *,
    encoder: LazyEncoder,
    text_basis: np.ndarray | None,
    scale: tuple[float, float] | None,
    ref_time: float | None,
    cold_n: int | None = None,
) -> UserFeatures:
    """The user-group rows of ``query`` (the encoder is loaded only when a text is to be read)."""
    x = FeatureInputs(
        query,
        nodes,
        profiles or {},
        texts or {},
        encoder=encoder.get() if (cfg.text_dim and (profiles or texts)) else None,
        text_basis=text_basis,
        scale=scale,
        ref_time=ref_time,
    )
    return user_features(x, [feature_group(n) for n in cfg.user_groups], cold_n=cold_n)


def zscore(s: np.ndarray) -> np.ndarray:
    """Each row standardised over the catalogue (the ``z_u`` of the fused score)."""
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True) + 1e-9
    return np.asarray((s - mu) / sd)


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


@dataclass(frozen=True, eq=False)
class FittedTowers:
    """A trained two-tower model: network, backbone, vocabularies and the training users' rows."""

    config: TwoTowerConfig
    net: Any  # interests.recsys.model.TwoTowerNet (torch is imported only when a model is built)
    known: Histories  # the training histories (user and item vocabularies)
    feats: UserFeatures  # the training users' feature rows, in ``known`` order
    nodes: ItemNodes  # taxonomy domain and topic of every item
    backbone: Backbone | None = None
    text_basis: np.ndarray | None = None
    titles: list[str] = field(default_factory=list)
    domains: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    scale: tuple[float, float] | None = None  # the rating scale of the training events
    ref_time: float | None = None  # the last training event's time
    profile_nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # user -> item -> cited node
    categories: ItemCategories | None = None  # every catalogue category of every item
    transitions: Transitions | None = None  # None: a format 1 folder (rebuilt on first use)
    train_log: TrainLog | None = None
    backbone_choice: dict[str, Any] | None = None  # what choose_backbone saw and chose
    fusion_choice: dict[str, float] | None = None  # what tune_fusion saw and chose
    input_choice: dict[str, Any] | None = None  # what select_inputs saw and chose
    forgotten: dict[str, Any] | None = None  # set by `interests forget`: see recsys.forget_rows
    encoder: LazyEncoder = field(default_factory=lambda: LazyEncoder(None), repr=False)

    # ---- inputs --------------------------------------------------------------------------------
    def features(
        self,
        query: Histories,
        profiles: Mapping[str, InterestProfile] | None = None,
        texts: Mapping[str, str] | None = None,
    ) -> UserFeatures:
        """Feature rows of any users (``query``), from their histories, profiles and texts."""
        return build_features(
            self.config,
            self.nodes,
            query,
            profiles,
            texts,
            encoder=self.encoder,
            text_basis=self.text_basis,
            scale=self.scale,
            ref_time=self.ref_time,
        )

    def rows(self, user_ids: Sequence[str]) -> list[int]:
        """The training rows of ``user_ids``; an unknown user is a :class:`ConfigError`."""
        idx = self.known.user_index()
        missing = [u for u in user_ids if u not in idx]
        if missing:
            raise ConfigError(
                f"unknown user {missing[0]!r}: use recommend_new(items=..., profile=..., "
                "text=...) for users the model was not trained on"
            )
        return [idx[u] for u in user_ids]

    def history_tensor(self, query: Histories) -> Any:
        """``query``'s last ``max_history`` item indices as the user tower reads them."""
        return history_tensor(query, self.config.max_history)

    # ---- scores --------------------------------------------------------------------------------
    @cached_property
    def item_vecs(self) -> Any:
        """The item tower's output ``[items, dim]``, computed once (a fitted model never trains)."""
        import torch

        with torch.no_grad():
            return self.net.item_vectors()

    def tower_scores(self, query: Histories, feats: UserFeatures) -> np.ndarray:
        """The two-tower score ``u . v_i`` of every query user and item."""
        u = tower_vectors(self.net, query, feats, item_vecs=self.item_vecs)
        return np.asarray((u @ self.item_vecs.T).numpy())

    def score(
        self,
        query: Histories,
        *,
        profiles: Mapping[str, InterestProfile] | None = None,
        texts: Mapping[str, str] | None = None,
        feats: UserFeatures | None = None,
    ) -> np.ndarray:
        """Fused scores ``[users, items]`` for query users from their own histories and profiles."""
        f = feats if feats is not None else self.features(query, profiles, texts)
        tw = self.tower_scores(query, f)
        if self.backbone is None:
            return tw
        a = 0.5 if self.config.fusion is None else self.config.fusion
        return np.asarray((1 - a) * zscore(self.backbone.score(query)) + a * zscore(tw))

    # ---- nodes and exploration -----------------------------------------------------------------
    @cached_property
    def node_index(self) -> NodeIndex:
        """Every node the model can steer to (taxonomy domains and topics, catalogue categories)."""
        return NodeIndex(self.nodes, self.categories, self.known.n_items)

    def explore_domains(self) -> tuple[np.ndarray, list[str]]:
        """``(domain index of every item or -1, domain names)``: what exploration chooses among."""
        return self.node_index.domain_space(self.domains)

    def explore_transitions(self) -> Transitions:
        """The domain transitions (:class:`~interests.recsys.explore.Transitions`); a model saved
        without them rebuilds them once from its saved training histories."""
        return self.transitions if self.transitions is not None else self.rebuilt_transitions

    @cached_property
    def rebuilt_transitions(self) -> Transitions:
        """The domain transitions of the training histories, computed here."""
        from .explore import Transitions

        dom, names = self.explore_domains()
        return Transitions.fit(self.known.items, dom, len(names))


__all__ = ["FittedTowers", "LazyEncoder", "build_features", "history_tensor", "tower_vectors", "zscore"]
