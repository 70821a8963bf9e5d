"""Ranking metrics and the temporal split against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interests.recsys.metrics import coverage_at_k, diversity_at_k, ndcg_at_k, recall_at_k, summarize, top_k
from interests.recsys.split import split_sizes


def test_recall_divides_by_min_of_targets_and_k() -> None:
    assert recall_at_k([5, 1, 7, 3], [1, 3, 9], 2) == pytest.approx(1 / 2)  # 1 hit, min(3, 2) = 2
    assert recall_at_k([5, 1, 7, 3], [1, 3, 9], 4) == pytest.approx(2 / 3)
    assert recall_at_k([5, 1], [], 2) == 0.0


def test_ndcg_hand_computed() -> None:
    # hits at ranks 2 and 4 (1-based); ideal: 2 hits at ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k([5, 1, 7, 3], [1, 3], 4) == pytest.approx(dcg / idcg)
    # ideal DCG over min(|targets|, k): 3 targets, k=2
    assert ndcg_at_k([1, 3, 7], [1, 3, 9], 2) == pytest.approx(1.0)
    assert ndcg_at_k([7, 8], [1], 2) == 0.0


def test_coverage_and_diversity() -> None:
    assert coverage_at_k([[0, 1, 2], [2, 3, 4]], 10, 2) == pytest.approx(4 / 10)  # {0,1,2,3}
    domains = np.array([0, 0, 1, 1, 2])
    assert diversity_at_k([0, 1, 2, 4], domains, 4) == pytest.approx(3 / 4)
    assert diversity_at_k([0, 1], domains, 20) == pytest.approx(1 / 2)


def test_top_k_orders_and_breaks_ties_by_index() -> None:
    s = np.array([[0.1, 0.9, 0.5, 0.9, -1.0]])
    assert top_k(s, 3).tolist() == [[1, 3, 2]]


def test_summarize_means_over_users() -> None:
    ranked = np.array([[0, 1], [2, 3]])
    out = summarize(
        ranked, [np.array([0]), np.array([1])], n_items=4, domains=np.array([0, 1, 0, 1]), ks=(1, 2)
    )
    assert out["recall@1"] == pytest.approx(0.5)
    assert out["ndcg@2"] == pytest.approx(0.5)
    assert out["coverage@2"] == pytest.approx(1.0)
    assert out["diversity@2"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("n", "sizes"),
    [
        (1, (0, 0, 1)),
        (2, (1, 0, 1)),
        (3, (1, 1, 1)),
        (10, (8, 1, 1)),
        (25, (21, 2, 2)),
        (35, (27, 4, 4)),
        (100, (80, 10, 10)),
    ],
)
def test_split_sizes(n: int, sizes: tuple[int, int, int]) -> None:
    # last 10% (>= 1) test, 10% before it valid (>= 1 from 3 events); Python's round (half to even)
    assert split_sizes(n) == sizes
