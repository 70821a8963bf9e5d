"""The two-tower network and its hyper-parameters (a dataclass saved in the checkpoint).

Item tower: ``v_i = id_i + W_text text_i + dom_{d(i)} + topic_{t(i)}``.
User tower, every group switchable::

    u = W_hist sum_j a_j v_{h_j}            # pooled history, shared item vectors,
                                            # a_j = softmax of a learned weight per recency position
      + sum_g proj_g(x_g)                   # one term per user feature group g, by default
                                            # (interests.recsys.features.USER_GROUPS):
                                            #   W_prof profile_text (summary and node names, embedded)
                                            #   W_tax taxonomy_weights (over global domains and topics)
                                            #   MLP(L3) (rhythm, sentiment, trend, recency, volume)

The tower score is ``u . v_i``. Because the groups add up and the history
part is linear in each history item, :meth:`TwoTowerNet.parts` splits a
score exactly into per-history-item, per-taxonomy-node and per-group terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from interests.errors import ConfigError

try:
    import torch
    from torch import nn
except ImportError as exc:  # torch comes with the cpu/gpu extras, not the base install
    raise ConfigError(
        "the recommender needs PyTorch: pip install 'interests[cpu]' (CPU) or 'interests[gpu]' (GPU), "
        "or install torch yourself"
    ) from exc

from .features import USER_GROUPS, FeatureGroup, feature_group

#: the groups :meth:`TwoTowerNet.forward` takes by position (its signature predates the registry);
#: any other registered group comes in its ``extra`` mapping
POSITIONAL = ("profile", "taxonomy", "l3")


def _registered() -> list[str]:
    return [g.name for g in USER_GROUPS]


@dataclass
class TwoTowerConfig:
    """Hyper-parameters and shapes; saved as JSON next to the weights."""

    dim: int = 64
    max_history: int = 50
    # input groups (switch off for ablations)
    use_ids: bool = True
    use_item_text: bool = True
    use_item_nodes: bool = True
    use_history: bool = True
    use_profile: bool = True
    use_taxonomy: bool = True
    use_l3: bool = True
    # the user feature groups the network is built with (interests.recsys.features.USER_GROUPS)
    user_groups: list[str] = field(default_factory=_registered)
    # fused item-item backbone: final = (1 - fusion) * z(backbone) + fusion * z(tower)
    backbone: bool = True
    # "ease", "itemknn", "sasrec", or "auto": kind, parameter and decay chosen on the valid split
    # (EASE without one); auto tries SASRec too when backbone_sasrec is on
    backbone_kind: str = "auto"
    backbone_sasrec: bool = True
    ease_lambda: float = 100.0
    knn_k: int = 100
    recency_decay: float = 0.9
    sasrec_epochs: int = 20  # a SASRec backbone's epochs (chosen on valid by auto)
    sasrec: dict[str, Any] = field(default_factory=dict)  # SASRecConfig overrides of the backbone
    ease_keep: int = 500
    fusion: float | None = None  # None: chosen on the valid split (0.5 without one)
    # training
    loss: str = "sampled_softmax"  # or "bce"
    logq: bool = True
    neg_per_pos: int = 4
    batch_size: int = 1024  # at most; small logs use len(examples) // 20 (at least 64)
    epochs: int = 40
    lr: float = 2e-3
    weight_decay: float = 1e-6
    patience: int = 3
    cold_context_prob: float = 0.2
    cold_context: int = 3
    profile_dropout: float = 0.3
    seed: int = 0
    encoder: str = "hashing"
    # shapes (set by fit)
    n_items: int = 0
    text_dim: int = 0
    n_domains: int = 0
    n_topics: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TwoTowerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class TwoTowerNet(nn.Module):
    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.item_id = nn.Embedding(cfg.n_items, d)
        nn.init.normal_(self.item_id.weight, std=0.05)
        self.text_proj = nn.Linear(max(cfg.text_dim, 1), d, bias=False)
        self.dom = nn.Embedding(cfg.n_domains + 1, d, padding_idx=cfg.n_domains)
        self.topic = nn.Embedding(cfg.n_topics + 1, d, padding_idx=cfg.n_topics)
        nn.init.normal_(self.dom.weight, std=0.05)
        nn.init.normal_(self.topic.weight, std=0.05)
        with torch.no_grad():
            self.dom.weight[cfg.n_domains].zero_()
            self.topic.weight[cfg.n_topics].zero_()
        self.pos_logit = nn.Parameter(torch.zeros(cfg.max_history))
        self.hist_proj = nn.Linear(d, d, bias=False)
        nn.init.eye_(self.hist_proj.weight)
        self.user_groups: list[FeatureGroup] = [feature_group(n) for n in cfg.user_groups]
        for g in self.user_groups:
            self.add_module(g.module_name, g.module(cfg))
        self.user_bias = nn.Parameter(torch.zeros(d))
        self.register_buffer("item_text", torch.zeros(cfg.n_items, max(cfg.text_dim, 1)))
        self.register_buffer("item_dom", torch.full((cfg.n_items,), cfg.n_domains, dtype=torch.long))
        self.register_buffer("item_topic", torch.full((cfg.n_items,), cfg.n_topics, dtype=torch.long))

    def item_vectors(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        if idx is None:
            idx = torch.arange(cfg.n_items, device=self.user_bias.device)
        v = torch.zeros(len(idx), cfg.dim, device=self.user_bias.device)
        if cfg.use_ids:
            v = v + self.item_id(idx)
        if cfg.use_item_text and cfg.text_dim:
            v = v + self.text_proj(self.item_text[idx])  # type: ignore[index]
        if cfg.use_item_nodes and cfg.n_topics:
            v = v + self.dom(self.item_dom[idx]) + self.topic(self.item_topic[idx])  # type: ignore[index]
        return v

    def history_weights(self, hist: torch.Tensor) -> torch.Tensor:
        """Pooling weights [B, L]; ``hist`` is right-aligned (most recent last), -1 = padding."""
        L = hist.shape[1]
        logits = self.pos_logit[:L].flip(0).unsqueeze(0).expand_as(hist).clone()
        logits[hist < 0] = -1e9
        w = torch.softmax(logits, dim=1)
        return w * (hist >= 0).any(dim=1, keepdim=True)

    def group_vectors(
        self,
        hist: torch.Tensor,
        users: Mapping[str, torch.Tensor],
        item_vecs: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Each input group's additive share of the user vector: ``history``, then every user group
        (``users``: its ``[B, width]`` rows by name), zeros for groups switched off."""
        cfg = self.cfg
        B = hist.shape[0]
        zero = torch.zeros(B, cfg.dim, device=hist.device)
        out = {"history": zero} | {g.name: zero for g in self.user_groups}
        if cfg.use_history:
            vecs = item_vecs if item_vecs is not None else self.item_vectors()
            h = vecs[hist.clamp(min=0)]
            pooled = (self.history_weights(hist).unsqueeze(-1) * h).sum(1)
            out["history"] = self.hist_proj(pooled)
        for g in self.user_groups:
            if g.enabled(cfg):
                out[g.name] = self.get_submodule(g.module_name)(users[g.name])
        return out

    def user_vectors(
        self,
        hist: torch.Tensor,
        users: Mapping[str, torch.Tensor],
        item_vecs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        parts = self.group_vectors(hist, users, item_vecs)
        total = self.user_bias.expand(hist.shape[0], -1)
        for v in parts.values():
            total = total + v
        return total

    def forward(
        self,
        hist: torch.Tensor,
        prof: torch.Tensor,
        tax: torch.Tensor,
        l3: torch.Tensor,
        cand: torch.Tensor,
        logq: torch.Tensor | None = None,
        extra: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The training loss of one batch (``forward`` so that DDP can wrap the network).

        ``prof``, ``tax``, ``l3``: the batch rows of the :data:`POSITIONAL` groups;
        ``extra``: those of any other registered group, by name. ``cand`` is the
        targets ``[B]`` (in-batch sampled softmax; ``logq``: the log sampling
        probability of each target, subtracted from its logits) or, for the BCE
        loss, ``[B, 1 + negatives]`` with the target first.
        """
        import torch.nn.functional as F

        needed = torch.cat([hist.clamp(min=0).reshape(-1), cand.reshape(-1)])
        uniq, inv = torch.unique(needed, return_inverse=True)
        vecs = self.item_vectors(uniq)
        n_hist = hist.numel()
        local_hist = torch.where(hist >= 0, inv[:n_hist].reshape(hist.shape), torch.full_like(hist, -1))
        users = dict(zip(POSITIONAL, (prof, tax, l3), strict=True)) | dict(extra or {})
        u = self.user_vectors(local_hist, users, item_vecs=vecs)
        cv = vecs[inv[n_hist:]].reshape(*cand.shape, -1)
        if cand.dim() == 2:  # BCE: the target against sampled negatives
            logits = (u.unsqueeze(1) * cv).sum(-1)
            labels = torch.zeros_like(logits)
            labels[:, 0] = 1.0
            return F.binary_cross_entropy_with_logits(logits, labels)
        logits = u @ cv.T
        if logq is not None:
            logits = logits - logq.unsqueeze(0)
        eye = torch.eye(len(cand), dtype=torch.bool, device=cand.device)
        same = (cand.unsqueeze(0) == cand.unsqueeze(1)) & ~eye  # other examples of the same item
        logits = logits.masked_fill(same, -1e9)
        return F.cross_entropy(logits, torch.arange(len(cand), device=cand.device))


__all__ = ["POSITIONAL", "TwoTowerConfig", "TwoTowerNet"]
