"""The fusion weight moves off the backbone only when the valid gain exceeds its noise (issue #15)."""

from __future__ import annotations

import numpy as np

from interests.recsys.fusion import choose_fusion

GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def _valid_ndcg(gain: float, seed: int, users: int = 300) -> dict[float, np.ndarray]:
    """Per-user NDCG@20 per fusion weight: the backbone's, plus ``gain`` and per-user noise."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 0.6, users)
    out = {0.0: base}
    for a in GRID[1:]:
        out[a] = base + gain * a + rng.normal(0, 0.15, users)
    return out


def test_pure_noise_keeps_the_backbone() -> None:
    # every fusion weight is the backbone plus zero-mean noise; the naive argmax still leaves it
    kept = 0
    for seed in range(20):
        per_user = _valid_ndcg(0.0, seed)
        choice = choose_fusion(per_user)
        kept += choice["fusion"] == 0.0
        assert choice["best"] == max(per_user, key=lambda a: (per_user[a].mean(), -a))
    naive_moves = sum(
        max(_valid_ndcg(0.0, s), key=lambda a: _valid_ndcg(0.0, s)[a].mean()) != 0.0 for s in range(20)
    )
    assert naive_moves >= 15  # argmax alone would ship a chance fusion most of the time
    assert kept >= 19  # the rule keeps the backbone (2 standard errors: rare false moves)


def test_a_real_gain_takes_the_fusion() -> None:
    for seed in range(5):
        choice = choose_fusion(_valid_ndcg(0.05, seed))
        assert choice["fusion"] > 0.5 and choice["gain"] > 2 * choice["se"]


def test_the_margin_is_a_paired_standard_error() -> None:
    base = np.array([0.1, 0.2, 0.3, 0.4])
    d = np.array([0.01, 0.03, 0.02, 0.02])  # mean 0.02, std (ddof 1) 0.00816, se 0.00408
    choice = choose_fusion({0.0: base, 1.0: base + d}, margin=2.0)
    assert choice["fusion"] == 1.0 and abs(choice["se"] - d.std(ddof=1) / 2) < 1e-12
    assert choose_fusion({0.0: base, 1.0: base + d}, margin=5.0)["fusion"] == 0.0
