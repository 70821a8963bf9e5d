"""Data-parallel training of the two-tower network on Ray Train (``TorchTrainer``, DDP).

Every worker holds a replica of the network and runs the single-process
:class:`~interests.recsys.train.Trainer` on its share of each epoch's
examples: the same example order on every worker, every ``world``-th example
to each, in batches of ``batch // world``, so that one synchronised step sees
one global batch, as in the single-process loop. DDP averages the gradients
(gloo on CPU, NCCL on GPU). Worker 0 scores the valid users after each epoch
and broadcasts the score, so that every worker takes the same early-stopping
decision, then writes a checkpoint: the network, the optimiser, every random
stream and the best epoch so far.

Failures:

* a killed worker (or node) makes Ray Train restart the worker group, which
  resumes from the last checkpoint (``max_failures`` times). Because the
  checkpoint holds the random streams as well, the resumed run ends with the
  weights an uninterrupted run would have had;
* a killed driver: the same call again (same data, settings and
  ``checkpoints`` folder) resumes from the last checkpoint of the run, which is
  named after a digest of the data and the settings.

With one worker the result is the single-process result exactly.
Nothing here is imported by ``import interests``; Ray is imported when
:func:`train_net_ray` runs (``pip install 'interests[ray]'``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InterestsError
from ..recsys.data import Histories
from ..recsys.features import UserFeatures
from ..recsys.train import Trainer, TrainLog
from .ray_connect import check_address, connect, require_ray

log = logging.getLogger(__name__)

_STATE = "trainer.pt"


@dataclass(frozen=True)
class RayTraining:
    """How to train on Ray: ``workers`` DDP workers of ``cpus_per_worker`` CPUs (a GPU each with ``use_gpu``).

    ``address``: as for distributed extraction (``None``: the Ray this process
    is connected to, else a new local cluster). ``checkpoints``: the folder
    (shared by all nodes: NFS or a ``s3://`` URI on a multi-node cluster)
    where each epoch's checkpoint is kept; a call with the same data and
    settings resumes from it. ``None``: a temporary folder, removed at the end
    (restarts after a killed worker still resume from it). ``max_failures``:
    worker-group restarts allowed. ``on_epoch(rank, epoch)`` runs in every
    worker after each epoch's checkpoint (progress reporting, failure drills).
    """

    workers: int = 2
    address: str | None = None
    cpus_per_worker: float = 1.0
    use_gpu: bool = False
    checkpoints: str | Path | None = None
    max_failures: int = 3
    on_epoch: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, not {self.workers}")
        check_address(self.address)

    def train(
        self,
        net: Any,
        data: Histories,
        feats: UserFeatures,
        *,
        epochs: int,
        eval_fn: Callable[[Any], float] | None = None,
    ) -> TrainLog:
        """:func:`train_net_ray` with this spec (what ``fit_two_tower(distributed=...)`` calls)."""
        return train_net_ray(net, data, feats, epochs=epochs, eval_fn=eval_fn, spec=self)


def run_name(net: Any, data: Histories, epochs: int, workers: int) -> str:
    """The run's name: a digest of the settings, the data and the worker count (the resume key)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(json.dumps(net.cfg.to_dict(), sort_keys=True, default=str).encode())
    h.update(json.dumps([epochs, workers, data.n_users, data.n_items]).encode())
    for items in data.items:
        h.update(np.asarray(items, dtype=np.int64).tobytes())
        h.update(b"|")
    return f"two-tower-{h.hexdigest()}"


def require_ray_train() -> Any:
    """The ``ray`` module with Ray Train importable, or a :class:`ConfigError` naming the extra."""
    ray = require_ray("distributed training")
    try:
        import ray.train.torch  # Ray Train needs ray[train]'s pandas, pyarrow, ...
    except ImportError as exc:
        raise ConfigError(
            f"distributed training needs Ray Train: pip install 'interests[ray]' (brings ray[train]); {exc}"
        ) from exc
    return ray


def train_net_ray(
    net: Any,
    data: Histories,
    feats: UserFeatures,
    *,
    epochs: int,
    eval_fn: Callable[[Any], float] | None = None,
    spec: RayTraining | None = None,
) -> TrainLog:
    """:func:`~interests.recsys.train.train_net` on ``spec.workers`` Ray Train workers.

    ``net`` is trained in place (it ends with the best epoch's weights, like
    ``train_net``); ``eval_fn(net)`` is pickled to the workers.
    """
    ray = require_ray_train()
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    spec = spec or RayTraining()
    started = not ray.is_initialized()
    if started:
        connect(ray, check_address(spec.address) or "local")
    temp = None
    if spec.checkpoints is None:
        temp = tempfile.mkdtemp(prefix="interests-train-")
    storage = str(spec.checkpoints) if spec.checkpoints is not None else temp
    if "://" not in str(storage):
        storage = str(Path(str(storage)).resolve())
    name = run_name(net, data, epochs, spec.workers)
    try:
        payload = ray.put({"net": net, "data": data, "feats": feats, "eval_fn": eval_fn})
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={
                "payload": payload,
                "epochs": epochs,
                "threads": max(1, int(spec.cpus_per_worker)),
                "on_epoch": spec.on_epoch,
            },
            scaling_config=ScalingConfig(
                num_workers=spec.workers,
                use_gpu=spec.use_gpu,
                resources_per_worker={"CPU": spec.cpus_per_worker},
            ),
            run_config=RunConfig(
                name=name,
                storage_path=storage,
                failure_config=FailureConfig(max_failures=spec.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=2),
            ),
        )
        log.info("training on %d Ray workers (run %s in %s)", spec.workers, name, storage)
        try:
            result = trainer.fit()
        except Exception as exc:
            where = f"{storage}/{name}"
            again = f"; the same call resumes from the last checkpoint in {where}" if temp is None else ""
            raise InterestsError(
                f"distributed training failed ({spec.max_failures} restarts allowed): "
                f"{type(exc).__name__}: {exc}"[:2000]
                + again
            ) from exc
        if result.checkpoint is None:
            raise ConfigError(f"distributed training ended without a checkpoint (run {name} in {storage})")
        state = _read_state(result.checkpoint, "cpu")
    finally:
        if started:
            ray.shutdown()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    net.load_state_dict(state["best_state"] if state["best_state"] is not None else state["net"])
    net.eval()
    out = TrainLog(**state["log"])
    out.seconds = sum(out.epoch_seconds)
    return out


def _read_state(checkpoint: Any, device: Any) -> dict[str, Any]:
    import torch

    with checkpoint.as_directory() as d:
        state: dict[str, Any] = torch.load(Path(d) / _STATE, map_location=device, weights_only=False)
    return state


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: the shared :class:`Trainer` on this worker's share, one checkpoint per epoch."""
    import ray
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    payload = ray.get(config["payload"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(config["threads"])
    device = ray.train.torch.get_device()
    net = payload["net"].to(device)
    tr = Trainer(net, payload["data"], payload["feats"], rank=rank, world=world)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        tr.load_state_dict(_read_state(checkpoint, device))
        tr.log.resumed.append(tr.epoch)
    model = ray.train.torch.prepare_model(
        net, move_to_device=False, parallel_strategy_kwargs={"find_unused_parameters": True}
    )
    eval_fn, epochs, on_epoch = payload["eval_fn"], config["epochs"], config["on_epoch"]
    distributed = dist.is_available() and dist.is_initialized()
    while tr.epoch < epochs and not tr.stopped:
        loss = torch.tensor([tr.run_epoch(model), 0.0], dtype=torch.float64)
        if eval_fn is not None and rank == 0:
            loss[1] = tr.evaluate(eval_fn)
        if distributed:  # mean loss over workers; worker 0's valid score to all
            score = loss[1].clone()
            dist.all_reduce(loss)
            dist.broadcast(score, src=0)
            loss[0], loss[1] = loss[0] / world, score
        tr.end_epoch(float(loss[0]), float(loss[1]) if eval_fn is not None else None)
        metrics = {"epoch": tr.epoch, "loss": tr.log.loss[-1]}
        if tr.log.valid:
            metrics["valid_ndcg20"] = tr.log.valid[-1]
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                torch.save(tr.state_dict(), Path(d) / _STATE)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
        else:
            ray.train.report(metrics)
        if on_epoch is not None:
            on_epoch(rank, tr.epoch)


__all__ = ["RayTraining", "require_ray_train", "run_name", "train_net_ray"]
