"""Training loop of the two-tower network: next-item examples, in-batch softmax or BCE, early stopping.

Every event after a user's first is one example: the target item, with the
(up to ``max_history``) events before it as the history the user tower
pools. With probability ``cold_context_prob`` the history is cut to its last
``cold_context`` events (and its L3 row replaced by the one computed from the
user's last ``cold_context`` events), and with probability ``profile_dropout``
the profile groups are hidden, so the model also learns to serve cold users.

Default loss: in-batch sampled softmax with log-Q correction (the other
targets of the batch are the negatives; each logit is reduced by the log of
its item's sampling probability, its share of training events; other
examples with the same target are masked out). Option: binary cross-entropy
against ``neg_per_pos`` uniformly sampled negatives.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .data import Histories
from .features import UserFeatures

log = logging.getLogger(__name__)


@dataclass
class Examples:
    flat: np.ndarray  # all users' items, concatenated
    offset: np.ndarray  # per user: start in flat
    user: np.ndarray  # per example
    end: np.ndarray  # per example: position of the target within the user's events

    @classmethod
    def of(cls, data: Histories) -> Examples:
        lens = np.array([len(x) for x in data.items], dtype=np.int64)
        offset = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        flat = np.concatenate(data.items) if data.items else np.zeros(0, dtype=np.int64)
        user = np.repeat(np.arange(len(lens)), np.maximum(lens - 1, 0))
        end = np.concatenate([np.arange(1, n) for n in lens]) if len(lens) else np.zeros(0, np.int64)
        return cls(flat, offset, user, end.astype(np.int64))

    def __len__(self) -> int:
        return len(self.user)

    def targets(self, rows: np.ndarray) -> np.ndarray:
        return self.flat[self.offset[self.user[rows]] + self.end[rows]]

    def histories(
        self, rows: np.ndarray, L: int, rng: np.random.Generator, cold_prob: float = 0.0, cold_n: int = 3
    ) -> tuple[np.ndarray, np.ndarray]:
        """Right-aligned item indices [len(rows), L] of the events before each target; -1 pads."""
        start = self.offset[self.user[rows]]
        pos = (self.end[rows] - L)[:, None] + np.arange(L)[None, :]
        keep = pos >= 0
        cut = np.zeros(len(rows), dtype=bool)
        if cold_prob > 0:
            cut = rng.random(len(rows)) < cold_prob
            keep[cut, : max(L - cold_n, 0)] = False
        out = np.where(keep, self.flat[np.where(keep, start[:, None] + pos, 0)], -1)
        return out, cut


@dataclass
class TrainLog:
    epochs: int = 0
    best_epoch: int = 0
    best_valid: float | None = None
    valid: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train_net(
    net: object,
    data: Histories,
    feats: UserFeatures,
    *,
    epochs: int,
    eval_fn: Callable[[], float] | None = None,
) -> TrainLog:
    """Train ``net`` in place; with ``eval_fn`` (valid NDCG) keep the best epoch and stop early."""
    import torch
    import torch.nn.functional as F

    cfg = net.cfg  # type: ignore[attr-defined]
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    ex = Examples.of(data)
    counts = np.bincount(ex.targets(np.arange(len(ex))), minlength=cfg.n_items).astype(np.float64) + 1.0
    logq = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)
    prof_all = torch.tensor(feats.profile)
    tax_all = torch.tensor(feats.taxonomy)
    l3_all = torch.tensor(feats.l3)
    l3_cold = torch.tensor(feats.l3_cold) if feats.l3_cold is not None else None
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)  # type: ignore[attr-defined]
    # small logs: smaller batches, so an epoch is still ~20+ optimiser steps
    batch = max(64, min(cfg.batch_size, len(ex) // 20))
    tl = TrainLog()
    t0 = time.perf_counter()
    best_state, bad = None, 0
    for epoch in range(1, epochs + 1):
        net.train()  # type: ignore[attr-defined]
        order = rng.permutation(len(ex))
        total, nb = 0.0, 0
        for b in range(0, len(order), batch):
            rows = order[b : b + batch]
            tgt = torch.tensor(ex.targets(rows))
            hist_np, cut = ex.histories(rows, cfg.max_history, rng, cfg.cold_context_prob, cfg.cold_context)
            hist = torch.tensor(hist_np)
            users = torch.tensor(ex.user[rows])
            prof, tax, l3 = prof_all[users], tax_all[users], l3_all[users]
            if l3_cold is not None and cut.any():  # a cut history gets the L3 row of a short history
                l3 = torch.where(torch.tensor(cut).unsqueeze(1), l3_cold[users], l3)
            if cfg.profile_dropout > 0:
                drop = torch.tensor(rng.random(len(rows)) < cfg.profile_dropout).unsqueeze(1)
                prof = prof.masked_fill(drop, 0.0)
                tax = tax.masked_fill(drop, 0.0)
            if cfg.loss == "bce":
                neg = torch.randint(0, cfg.n_items, (len(rows), cfg.neg_per_pos))
                cand = torch.cat([tgt.unsqueeze(1), neg], dim=1)
            else:
                cand = tgt
            needed = torch.cat([hist.clamp(min=0).reshape(-1), cand.reshape(-1)])
            uniq, inv = torch.unique(needed, return_inverse=True)
            vecs = net.item_vectors(uniq)  # type: ignore[attr-defined]
            n_hist = hist.numel()
            local_hist = torch.where(hist >= 0, inv[:n_hist].reshape(hist.shape), torch.full_like(hist, -1))
            u = net.user_vectors(local_hist, prof, tax, l3, item_vecs=vecs)  # type: ignore[attr-defined]
            cv = vecs[inv[n_hist:]].reshape(*cand.shape, -1)
            if cfg.loss == "bce":
                logits = (u.unsqueeze(1) * cv).sum(-1)
                labels = torch.zeros_like(logits)
                labels[:, 0] = 1.0
                loss = F.binary_cross_entropy_with_logits(logits, labels)
            else:
                logits = u @ cv.T
                if cfg.logq:
                    logits = logits - logq[tgt].unsqueeze(0)
                same = (tgt.unsqueeze(0) == tgt.unsqueeze(1)) & ~torch.eye(len(tgt), dtype=torch.bool)
                logits = logits.masked_fill(same, -1e9)
                loss = F.cross_entropy(logits, torch.arange(len(tgt)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            nb += 1
        tl.loss.append(total / max(nb, 1))
        tl.epochs = epoch
        if eval_fn is None:
            tl.best_epoch = epoch
            log.info("epoch %d: loss %.4f", epoch, tl.loss[-1])
            continue
        net.eval()  # type: ignore[attr-defined]
        score = float(eval_fn())
        tl.valid.append(score)
        log.info("epoch %d: loss %.4f, valid NDCG@20 %.4f", epoch, tl.loss[-1], score)
        if tl.best_valid is None or score > tl.best_valid:
            tl.best_valid, tl.best_epoch, bad = score, epoch, 0
            best_state = copy.deepcopy(net.state_dict())  # type: ignore[attr-defined]
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)  # type: ignore[attr-defined]
    net.eval()  # type: ignore[attr-defined]
    tl.seconds = time.perf_counter() - t0
    return tl


__all__ = ["Examples", "TrainLog", "train_net"]
