"""The shared interest taxonomy: global domains (L1) and topics (L2) consolidated
from many users' profiles, an item classifier over them, and per-user L3
feature vectors against them.

    from interests.taxonomy import build_taxonomy, Taxonomy
    tax = build_taxonomy(profiles, catalog, encoder="hashing")
    tax.save("taxonomy/")
    vectors = Taxonomy.load("taxonomy/").user_vectors(profiles, histories)

The folder format and the column layout of the user vectors are described
in ``docs/hierarchy.md`` and in :mod:`interests.taxonomy.model` /
:mod:`interests.taxonomy.vectors`.
"""

from __future__ import annotations

from .build import apply_taxonomy, build_taxonomy
from .model import FORMAT_VERSION, GlobalDomain, GlobalTopic, ItemAssignment, Taxonomy, TaxonomyError
from .vectors import UserVectors, column_layout

USER_VECTORS_FILE = "user_vectors.parquet"

__all__ = [
    "FORMAT_VERSION",
    "USER_VECTORS_FILE",
    "GlobalDomain",
    "GlobalTopic",
    "ItemAssignment",
    "Taxonomy",
    "TaxonomyError",
    "UserVectors",
    "apply_taxonomy",
    "build_taxonomy",
    "column_layout",
]
