"""The shared taxonomy as data: global domains and topics, the item classifier, save/load.

On disk (``Taxonomy.save(directory)``), no pickle:

* ``taxonomy.json``: format version, encoder, metrics, and the tree
  (domains > topics with ids, labels, sizes, example items, member node names).
* ``classifier.safetensors``: the item classifier as plain arrays
  (multinomial logistic regression ``coef`` [T, dim] and ``intercept`` [T]
  over the global topics in tree order, ``topic_domain`` [T] int index of
  each topic's domain) plus ``domain_centroids`` [D, dim] and
  ``topic_centroids`` [T, dim] (unit vectors of the member nodes).
* ``items.parquet``: one row per catalogue item: ``item_id``, ``domain_id``,
  ``topic_id``, ``prob`` (topic probability), ``domain_prob``, ``cited``
  (cited as evidence by some profile at build time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InterestsError

if TYPE_CHECKING:
    from ..encode import TextEncoder
    from ..events import Catalog, UserHistory
    from ..schema import InterestProfile
    from .vectors import UserVectors

FORMAT_VERSION = "1.0"


class TaxonomyError(InterestsError):
    """A taxonomy could not be built, read or applied; the message says why."""


@dataclass
class GlobalTopic:
    """L2: a global topic inside a global domain."""

    id: str
    label: str
    size: int = 0  # catalogue items assigned to it
    example_items: list[str] = field(default_factory=list)  # titles
    n_nodes: int = 0  # user topic nodes clustered into it
    n_users: int = 0
    names: list[str] = field(default_factory=list)  # most frequent node names
    categories: list[str] = field(default_factory=list)  # most frequent evidence categories


@dataclass
class GlobalDomain:
    """L1: a global domain, consolidated from the users' own domain nodes."""

    id: str
    label: str
    size: int = 0
    example_items: list[str] = field(default_factory=list)
    n_nodes: int = 0
    n_users: int = 0
    names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    llm_label: str | None = None
    topics: list[GlobalTopic] = field(default_factory=list)


@dataclass(frozen=True)
class ItemAssignment:
    """Where the classifier puts an item: (domain, topic) and their probabilities."""

    domain_id: str
    topic_id: str
    prob: float  # P(topic)
    domain_prob: float  # P(domain) = sum of its topics' probabilities


@dataclass
class Taxonomy:
    """Global domains and topics, and a classifier mapping item texts onto them."""

    domains: list[GlobalDomain]
    encoder: str
    coef: np.ndarray  # [T, dim]
    intercept: np.ndarray  # [T]
    domain_centroids: np.ndarray  # [D, dim]
    topic_centroids: np.ndarray  # [T, dim]
    assignments: dict[str, ItemAssignment] = field(default_factory=dict)
    cited_items: set[str] = field(default_factory=set)
    metrics: dict[str, Any] = field(default_factory=dict)
    _encoder: TextEncoder | None = field(default=None, repr=False, compare=False)

    # ---- tree ---------------------------------------------------------------
    @property
    def topics(self) -> list[GlobalTopic]:
        return [t for d in self.domains for t in d.topics]

    @property
    def domain_ids(self) -> list[str]:
        return [d.id for d in self.domains]

    @property
    def topic_ids(self) -> list[str]:
        return [t.id for t in self.topics]

    def topic_domain_index(self) -> np.ndarray:
        return np.array([k for k, d in enumerate(self.domains) for _ in d.topics], dtype=np.int64)

    def domain(self, domain_id: str) -> GlobalDomain:
        for d in self.domains:
            if d.id == domain_id:
                return d
        raise KeyError(domain_id)

    def tree(self) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.domains]

    # ---- classifier -----------------------------------------------------------
    def get_encoder(self) -> TextEncoder:
        if self._encoder is None:
            from ..encode import get_encoder

            self._encoder = get_encoder(self.encoder)
        return self._encoder

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """Topic probabilities [n, T] for unit item vectors [n, dim]."""
        from .classify import predict_proba

        return predict_proba(self.coef, self.intercept, vectors)

    def classify(self, vectors: np.ndarray) -> list[tuple[int, int, float, float]]:
        """(domain index, topic index, P(topic), P(domain)) for each item vector."""
        from .classify import decide

        dom, top, p, dp = decide(self.predict_proba(vectors), self.topic_domain_index())
        return [(int(a), int(b), float(c), float(d)) for a, b, c, d in zip(dom, top, p, dp, strict=True)]

    def assign_items(
        self, catalog: Catalog | Sequence[Any], *, refresh: bool = False
    ) -> dict[str, ItemAssignment]:
        """(domain, topic, probability) for every item of ``catalog``.

        Items assigned at build time are returned from the stored table;
        others (new items) are encoded with the taxonomy's encoder and
        classified, and remembered. ``refresh=True`` reclassifies all.
        """
        from ..encode import item_text

        items = list(catalog.values()) if isinstance(catalog, Mapping) else list(catalog)
        new = [it for it in items if refresh or it.item_id not in self.assignments]
        if new:
            vectors = self.get_encoder().encode([item_text(it) for it in new])
            topics = self.topics
            for it, (d, t, p, dp) in zip(new, self.classify(vectors), strict=True):
                self.assignments[it.item_id] = ItemAssignment(
                    self.domains[d].id, topics[t].id, round(p, 4), round(dp, 4)
                )
        return {it.item_id: self.assignments[it.item_id] for it in items}

    # ---- users ------------------------------------------------------------------
    def user_vectors(
        self,
        profiles: Sequence[InterestProfile],
        histories: Mapping[str, UserHistory] | None = None,
        *,
        catalog: Catalog | None = None,
    ) -> UserVectors:
        """Per-user L3 features against this taxonomy (see :mod:`interests.taxonomy.vectors`)."""
        from .vectors import compute_user_vectors

        if catalog is not None:
            self.assign_items(catalog)
        return compute_user_vectors(self, profiles, histories)

    # ---- disk --------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from safetensors.numpy import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        doc = {
            "format_version": FORMAT_VERSION,
            "encoder": self.encoder,
            "n_domains": len(self.domains),
            "n_topics": len(self.topics),
            "metrics": self.metrics,
            "domains": self.tree(),
        }
        (out / "taxonomy.json").write_text(
            json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        save_file(
            {
                "coef": np.ascontiguousarray(self.coef, dtype=np.float32),
                "intercept": np.ascontiguousarray(self.intercept, dtype=np.float32),
                "topic_domain": self.topic_domain_index(),
                "domain_centroids": np.ascontiguousarray(self.domain_centroids, dtype=np.float32),
                "topic_centroids": np.ascontiguousarray(self.topic_centroids, dtype=np.float32),
            },
            str(out / "classifier.safetensors"),
            metadata={"topic_ids": json.dumps(self.topic_ids), "domain_ids": json.dumps(self.domain_ids)},
        )
        ids = list(self.assignments)
        table = pa.table(
            {
                "item_id": pa.array(ids, pa.string()),
                "domain_id": pa.array([self.assignments[i].domain_id for i in ids], pa.string()),
                "topic_id": pa.array([self.assignments[i].topic_id for i in ids], pa.string()),
                "prob": pa.array([self.assignments[i].prob for i in ids], pa.float32()),
                "domain_prob": pa.array([self.assignments[i].domain_prob for i in ids], pa.float32()),
                "cited": pa.array([i in self.cited_items for i in ids], pa.bool_()),
            }
        )
        pq.write_table(table, out / "items.parquet")

    @classmethod
    def load(cls, directory: str | Path) -> Taxonomy:
        import pyarrow.parquet as pq
        from safetensors.numpy import load_file

        src = Path(directory)
        path = src / "taxonomy.json"
        if not path.is_file():
            raise TaxonomyError(
                f"{src} is not a taxonomy folder (no taxonomy.json); "
                "build one with `interests taxonomy build`"
            )
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format_version") != FORMAT_VERSION:
            raise TaxonomyError(
                f"{path}: format_version {doc.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        domains = [
            GlobalDomain(**{**d, "topics": [GlobalTopic(**t) for t in d["topics"]]}) for d in doc["domains"]
        ]
        arrays = load_file(str(src / "classifier.safetensors"))
        table = pq.read_table(src / "items.parquet").to_pylist()
        assignments = {
            r["item_id"]: ItemAssignment(
                r["domain_id"], r["topic_id"], round(float(r["prob"]), 4), round(float(r["domain_prob"]), 4)
            )
            for r in table
        }
        return cls(
            domains=domains,
            encoder=doc["encoder"],
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            domain_centroids=arrays["domain_centroids"],
            topic_centroids=arrays["topic_centroids"],
            assignments=assignments,
            cited_items={r["item_id"] for r in table if r["cited"]},
            metrics=doc.get("metrics", {}),
        )


__all__ = ["FORMAT_VERSION", "GlobalDomain", "GlobalTopic", "ItemAssignment", "Taxonomy", "TaxonomyError"]
