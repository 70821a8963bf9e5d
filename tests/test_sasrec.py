"""SASRec and recency-popularity contracts: a planted next item ranks first; the decay arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from interests.recsys.baselines import RecentPopular, rank
from interests.recsys.data import Histories

DAY = 86400.0


def _histories(seqs: list[list[int]], n_items: int, times: list[list[float]] | None = None) -> Histories:
    times = times or [[float(t) for t in range(len(s))] for s in seqs]
    return Histories(
        [f"u{k}" for k in range(len(seqs))],
        [f"i{j}" for j in range(n_items)],
        [np.array(s, dtype=np.int64) for s in seqs],
        [np.array(t, dtype=np.float64) for t in times],
        [np.full(len(s), np.nan) for s in seqs],
    )


@pytest.fixture
def one_thread():  # type: ignore[no-untyped-def]
    """Tiny networks train faster on one thread (and far faster on a loaded machine)."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("negatives", [0, 8])  # the full softmax and a sampled one
def test_sasrec_ranks_the_planted_next_item_first(one_thread, negatives: int) -> None:  # type: ignore[no-untyped-def]
    from interests.recsys.sasrec import SASRec

    n_items, length = 30, 8
    rng = np.random.default_rng(0)
    nxt = rng.permutation(n_items)  # item j is always followed by nxt[j]: one cycle or several

    def walk(start: int, n: int) -> list[int]:
        out = [start]
        while len(out) < n:
            out.append(int(nxt[out[-1]]))
        return out

    # a walk must not revisit an item within its length, or the withheld item would be "seen"
    starts = [s for s in range(n_items) if len(set(walk(s, length + 1))) == length + 1]
    assert len(starts) >= 10
    train = _histories([walk(int(s), length) for s in rng.choice(starts, size=200)], n_items)
    model = SASRec(dim=32, max_len=10, epochs=40, dropout=0.1, lr=5e-3, seed=0, negatives=negatives).fit(
        train
    )
    # new users: every item's successor must come first, from short and longer histories alike
    query = _histories([walk(s, 3) for s in starts] + [walk(s, length) for s in starts], n_items)
    withheld = [walk(s, 4)[-1] for s in starts] + [walk(s, length + 1)[-1] for s in starts]
    top = rank(model.score(query), query, 1)[:, 0]
    assert (top == np.array(withheld)).mean() == 1.0


def test_the_step_budget_caps_epochs_early_stopping_logs_progress(one_thread, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from interests.recsys.sasrec import SASRec

    rng = np.random.default_rng(0)
    train = _histories(
        [list(rng.integers(0, 12, 6)) for _ in range(200)], 12
    )  # 200 windows: 4 steps an epoch
    valid = (train, [np.array([0]) for _ in range(200)])
    with caplog.at_level(logging.INFO, logger="interests.recsys.sasrec"):
        m = SASRec(dim=8, max_len=6, epochs=50, max_steps=9).fit(train, valid=valid)
    assert m.train_log.epochs == 2  # 9 steps of budget: two whole epochs
    assert any("at most" in r.getMessage() and "left" in r.getMessage() for r in caplog.records)
    # a refit given the epoch count runs exactly that many, whatever the budget
    assert SASRec(dim=8, max_len=6, max_steps=1).fit(train, epochs=3).train_log.epochs == 3
    # noise: valid never improves after the first epoch, so it stops `patience` epochs later
    flat = SASRec(dim=8, max_len=6, epochs=50, patience=2, lr=0.0).fit(train, valid=valid)
    assert flat.train_log.epochs == 3 and flat.train_log.best_epoch == 1


def test_sasrec_scores_an_empty_history_without_failing() -> None:
    pytest.importorskip("torch")
    from interests.recsys.sasrec import SASRec

    model = SASRec(dim=8, max_len=4, epochs=1).fit(_histories([[0, 1, 2], [1, 2, 0]], 3))
    s = model.score(_histories([[], [0]], 3))
    assert s.shape == (2, 3) and np.all(s[0] == 0) and np.isfinite(s).all()


def test_recent_popularity_arithmetic() -> None:
    # fit events (item, day): item 0 on days 0 and 9, item 1 on day 8, item 2 on day 20 (after both users)
    fit = _histories([[0, 1], [0, 2]], 3, [[0 * DAY, 8 * DAY], [9 * DAY, 20 * DAY]])
    # query users in reverse time order, so the sweep has to sort them and carry decayed counts
    query = _histories([[1], [0]], 3, [[10 * DAY], [9 * DAY]])
    s = RecentPopular(half_life_days=2.0).fit(fit).score(query)
    # user 0 at day 10: item 0 = 2^-(10/2) + 2^-(1/2); item 1 = 2^-(2/2); item 2 (day 20) not yet
    assert s[0] == pytest.approx([2**-5 + 2**-0.5, 2**-1, 0.0], rel=1e-6)
    # user 1 at day 9: item 0 = 2^-(9/2) + 2^0; item 1 = 2^-(1/2)
    assert s[1] == pytest.approx([2**-4.5 + 1.0, 2**-0.5, 0.0], rel=1e-6)
    # no decay: plain counts of the events up to each user's time
    flat = RecentPopular(half_life_days=float("inf")).fit(fit).score(query)
    assert flat.tolist() == [[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]]
    # no times at all: every event counts at the one reference time, i.e. popularity
    untimed = _histories([[0, 1], [0, 2]], 3, [[np.nan, np.nan], [np.nan, np.nan]])
    q = _histories([[1]], 3, [[np.nan]])
    assert RecentPopular(7.0).fit(untimed).score(q).tolist() == [[2.0, 1.0, 1.0]]
