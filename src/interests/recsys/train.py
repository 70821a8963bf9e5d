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
from dataclasses import asdict, dataclass, field
from typing import Any

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
    epoch_seconds: list[float] = field(default_factory=list)  # training only, without validation
    workers: int = 1
    resumed: list[int] = field(default_factory=list)  # epochs a checkpoint was resumed from


class Trainer:
    """One training run: examples, optimiser, random streams and the best epoch so far.

    ``rank``/``world``: this worker's share of a data-parallel run (every worker
    draws the same example order and takes every ``world``-th example of it,
    in batches of ``batch // world``, so a step still sees one global batch;
    the caller averages gradients, e.g. with DDP). ``world == 1`` is exactly
    the single-process loop. :meth:`state_dict` is everything a resumed run
    needs to continue as if it had not stopped.
    """

    def __init__(self, net: Any, data: Histories, feats: UserFeatures, *, rank: int = 0, world: int = 1):
        import torch

        cfg = net.cfg
        self.net, self.cfg, self.rank, self.world = net, cfg, rank, world
        self.device = next(net.parameters()).device
        torch.manual_seed(cfg.seed + rank)
        self.rng = np.random.default_rng(cfg.seed)  # the example order: the same on every worker
        self.aug = self.rng if world == 1 else np.random.default_rng([cfg.seed, rank])
        self.ex = Examples.of(data)
        counts = np.bincount(self.ex.targets(np.arange(len(self.ex))), minlength=cfg.n_items)
        freq = counts.astype(np.float64) + 1.0
        self.logq = torch.tensor(np.log(freq / freq.sum()), dtype=torch.float32, device=self.device)
        dev = self.device
        self.user_rows = {n: torch.tensor(x, device=dev) for n, x in feats.groups.items()}
        self.cold_rows = {n: torch.tensor(x, device=dev) for n, x in feats.cold.items()}
        self.opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # small logs: smaller batches, so an epoch is still ~20+ optimiser steps
        self.batch = max(64, min(cfg.batch_size, len(self.ex) // 20))
        self.local_batch = max(1, self.batch // world)
        self.log = TrainLog(workers=world)
        self.best_state: dict[str, Any] | None = None
        self.bad = 0
        self.stopped = False

    @property
    def epoch(self) -> int:
        return self.log.epochs

    def batch_inputs(self, rows: np.ndarray) -> tuple[Any, ...]:
        """The network's inputs for example ``rows`` (augmented as the config says)."""
        import torch

        from .model import POSITIONAL

        cfg, rng, dev = self.cfg, self.aug, self.device
        tgt = torch.tensor(self.ex.targets(rows), device=dev)
        hist_np, cut = self.ex.histories(rows, cfg.max_history, rng, cfg.cold_context_prob, cfg.cold_context)
        hist = torch.tensor(hist_np, device=dev)
        users = torch.tensor(self.ex.user[rows], device=dev)
        x = {n: v[users] for n, v in self.user_rows.items()}
        if cut.any():  # a cut history gets the rows of a short history (L3)
            at = torch.tensor(cut, device=dev).unsqueeze(1)
            for n, v in self.cold_rows.items():
                x[n] = torch.where(at, v[users], x[n])
        if cfg.profile_dropout > 0:  # hide the groups that come from the profile
            drop = torch.tensor(rng.random(len(rows)) < cfg.profile_dropout, device=dev).unsqueeze(1)
            for g in self.net.user_groups:
                if g.from_profile:
                    x[g.name] = x[g.name].masked_fill(drop, 0.0)
        named = [x.pop(n) for n in POSITIONAL]  # forward takes these by position, the rest by name
        if cfg.loss == "bce":
            neg = torch.randint(0, cfg.n_items, (len(rows), cfg.neg_per_pos)).to(dev)
            return hist, *named, torch.cat([tgt.unsqueeze(1), neg], dim=1), None, x or None
        return hist, *named, tgt, self.logq[tgt] if cfg.logq else None, x or None

    def run_epoch(self, model: Any = None) -> float:
        """One pass over this worker's share of the examples; the mean batch loss.

        ``model`` is the network or its DDP wrapper (default: the network).
        """
        model = model if model is not None else self.net
        self.net.train()
        t0 = time.perf_counter()
        order = self.rng.permutation(len(self.ex))
        if self.world > 1:  # equal shares, so that every worker takes the same number of steps
            per = len(order) // self.world
            order = order[: per * self.world][self.rank :: self.world]
        total, nb = 0.0, 0
        for b in range(0, len(order), self.local_batch):
            loss = model(*self.batch_inputs(order[b : b + self.local_batch]))
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
            nb += 1
        self.log.epoch_seconds.append(time.perf_counter() - t0)
        return total / max(nb, 1)

    def evaluate(self, eval_fn: Callable[[Any], float]) -> float:
        self.net.eval()
        return float(eval_fn(self.net))

    def end_epoch(self, loss: float, score: float | None) -> bool:
        """Record an epoch's loss and valid score; ``True`` when training should stop."""
        tl = self.log
        tl.loss.append(loss)
        tl.epochs += 1
        if score is None:
            tl.best_epoch = tl.epochs
            log.info("epoch %d: loss %.4f", tl.epochs, loss)
            return False
        tl.valid.append(score)
        log.info("epoch %d: loss %.4f, valid NDCG@20 %.4f", tl.epochs, loss, score)
        if tl.best_valid is None or score > tl.best_valid:
            tl.best_valid, tl.best_epoch, self.bad = score, tl.epochs, 0
            self.best_state = copy.deepcopy(self.net.state_dict())
        else:
            self.bad += 1
        self.stopped = self.bad >= self.cfg.patience
        return self.stopped

    def finish(self) -> TrainLog:
        """Keep the best epoch's weights (with a valid score) and switch to evaluation mode."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        self.net.eval()
        self.log.seconds = sum(self.log.epoch_seconds)
        return self.log

    def state_dict(self) -> dict[str, Any]:
        import torch

        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "rng": self.rng.bit_generator.state,
            "aug": None if self.aug is self.rng else self.aug.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "best_state": self.best_state,
            "bad": self.bad,
            "stopped": self.stopped,
            "log": asdict(self.log),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["rng"]
        if state["aug"] is not None:
            self.aug.bit_generator.state = state["aug"]
        torch.set_rng_state(state["torch_rng"])
        self.best_state, self.bad, self.stopped = state["best_state"], state["bad"], state["stopped"]
        self.log = TrainLog(**state["log"])


def train_net(
    net: Any,
    data: Histories,
    feats: UserFeatures,
    *,
    epochs: int,
    eval_fn: Callable[[Any], float] | None = None,
) -> TrainLog:
    """Train ``net`` in place; with ``eval_fn(net)`` (valid NDCG) keep the best epoch and stop early."""
    t0 = time.perf_counter()
    tr = Trainer(net, data, feats)
    while tr.epoch < epochs:
        loss = tr.run_epoch()
        if tr.end_epoch(loss, tr.evaluate(eval_fn) if eval_fn is not None else None):
            break
    out = tr.finish()
    out.seconds = time.perf_counter() - t0
    return out


__all__ = ["Examples", "TrainLog", "Trainer", "train_net"]
