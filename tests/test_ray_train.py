"""Data-parallel training on Ray Train (``interests.scale.RayTraining``), on a local 2-CPU cluster.

The synthetic matrix of ``worlds.grouped_world`` (every user holds one group of
items; the probe users miss exactly one, which every model must rank first).
One worker is the single-process loop (up to float rounding); two workers reach the same
ranking; a worker SIGKILLed mid-run, and a run that died and is started again,
both end with the weights of the uninterrupted run (the checkpoint holds the
random streams too).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from worlds import GROUPS, WITHHELD, grouped_world

from interests.errors import InterestsError
from interests.recsys import TwoTower

#: before a kill, time for Ray Train's controller to register the checkpoint just reported (it polls
#: the workers); without it, on a loaded machine, the restart could find no checkpoint registered yet
REGISTER_S = 5.0
FAST = {"epochs": 6, "batch_size": 64, "dim": 32, "seed": 0, "backbone": False, "fusion": 0.0}


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0})
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the on_epoch hooks below
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def world():
    return grouped_world()


def _fit(world, spec=None) -> TwoTower:
    from interests.recsys import from_user_histories

    h, cat, prof = world
    data = from_user_histories(h)
    valid = {f"p{g}": [WITHHELD[g]] for g in range(len(GROUPS))}
    return TwoTower(**FAST).fit(data, catalog=cat, profiles=prof, valid=valid, distributed=spec)


def _weights(model: TwoTower) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state.net.state_dict().items()}


def _same_weights(a: TwoTower, b: TwoTower, tol: float = 0.0) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.allclose(wa[k], wb[k], rtol=tol, atol=tol) for k in wa)


@pytest.fixture(scope="module")
def single(world) -> TwoTower:
    return _fit(world)


@pytest.fixture(scope="module")
def two(cluster, world) -> TwoTower:
    from interests.scale import RayTraining

    return _fit(world, RayTraining(workers=2))


def test_one_worker_is_the_single_process_loop(cluster, world, single) -> None:
    from interests.scale import RayTraining

    one = _fit(world, RayTraining(workers=1))
    assert one.train_log.workers == 1 and one.train_log.best_epoch == single.train_log.best_epoch
    assert np.allclose(one.train_log.valid, single.train_log.valid, atol=1e-6)
    # the same steps on the same batches; a Ray worker computes with 1 thread, the test process with
    # more, so float sums may differ in the last bits
    assert _same_weights(one, single, tol=1e-4)


def test_two_workers_reach_the_single_process_ranking(two, single) -> None:
    assert two.train_log.workers == 2 and two.train_log.resumed == []
    assert not _same_weights(two, single)  # really a different (data-parallel) run
    for model in (two, single):
        items, _ = model.recommend([f"p{g}" for g in range(len(GROUPS))], k=1)
        assert items[:, 0].tolist() == [WITHHELD[g] for g in range(len(GROUPS))]
    assert abs(two.train_log.best_valid - single.train_log.best_valid) < 0.05


def _kill_rank1_once(marker: str):
    def hook(rank: int, epoch: int) -> None:
        if rank == 1 and epoch == 2 and not os.path.exists(marker):
            Path(marker).touch()
            time.sleep(REGISTER_S)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def test_a_killed_worker_resumes_from_the_last_checkpoint(cluster, world, two, tmp_path) -> None:
    from interests.scale import RayTraining

    marker = tmp_path / "killed"
    spec = RayTraining(workers=2, on_epoch=_kill_rank1_once(str(marker)), max_failures=2)
    killed = _fit(world, spec)
    assert marker.exists()  # the worker was killed after epoch 2 ...
    # ... and a new worker group went on from the last checkpoint the controller had registered
    # (epoch 2's is written before the kill, but the controller may not have seen it yet)
    assert len(killed.train_log.resumed) == 1 and 1 <= killed.train_log.resumed[0] <= 2
    assert killed.train_log.epochs == two.train_log.epochs
    assert _same_weights(killed, two)


def _kill_every_worker_after(epoch_limit: int):
    def hook(rank: int, epoch: int) -> None:
        if epoch >= epoch_limit:
            time.sleep(REGISTER_S)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def test_a_failed_run_started_again_resumes_from_its_checkpoints(cluster, world, two, tmp_path) -> None:
    from interests.scale import RayTraining

    keep = tmp_path / "checkpoints"
    dying = RayTraining(workers=2, checkpoints=keep, max_failures=0, on_epoch=_kill_every_worker_after(3))
    with pytest.raises(InterestsError, match="resumes from the last checkpoint"):
        _fit(world, dying)
    again = _fit(world, RayTraining(workers=2, checkpoints=keep))
    assert len(again.train_log.resumed) == 1 and 1 <= again.train_log.resumed[0] <= 3
    assert _same_weights(again, two)


def test_without_ray_train_the_option_names_the_extra(monkeypatch, tmp_path) -> None:
    from click.testing import CliRunner
    from conftest import EXAMPLES
    from interests.cli import cli

    monkeypatch.setitem(sys.modules, "ray.train.torch", None)  # plain ray, without ray[train]'s deps
    out = CliRunner().invoke(
        cli, ["train", str(EXAMPLES / "events.csv"), "-o", str(tmp_path / "m"), "--workers", "2"]
    )
    assert out.exit_code != 0 and "pip install 'interests[ray]'" in out.output
    assert not (tmp_path / "m").exists()
