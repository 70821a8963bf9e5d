"""Build the shared taxonomy from many users' profiles, and apply it to new ones.

1. Encode every catalogue item (``item_text``) and every user node (name + evidence).
2. L1: cluster the users' domain nodes into global domains (KMeans, ``k`` by
   cosine silhouette unless ``n_domains`` is given).
3. L2: inside each global domain, cluster its topic nodes into global topics
   (``k`` by silhouette; one topic when no split reaches
   ``MIN_TOPIC_SILHOUETTE``).
4. Label each cited item with the (domain, topic) of the nodes citing it
   (majority), train the item classifier on them (held-out accuracy
   measured first), and assign every catalogue item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..encode import TextEncoder, get_encoder, item_text
from ..events import Catalog, Item, UserHistory
from ..schema import InterestProfile
from .classify import train_item_classifier
from .cluster import MIN_TOPIC_SILHOUETTE, Node, choose_clusters, collect_nodes, describe, node_vectors
from .model import GlobalDomain, GlobalTopic, ItemAssignment, Taxonomy, TaxonomyError

if TYPE_CHECKING:
    from .vectors import UserVectors

MAX_DOMAINS = 20
MAX_TOPICS = 12
N_EXAMPLES = 5


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(n == 0, 1.0, n)).astype(np.float32)


def _items(
    catalog: Catalog, profiles: Sequence[InterestProfile], histories: Mapping[str, UserHistory] | None
) -> list[Item]:
    """Catalogue items, plus bare items for ids that only the profiles or logs know."""
    items = dict(catalog.items())
    extra = [i for p in profiles for i in sorted(p.item_ids())]
    extra += [e.item_id for h in (histories or {}).values() for e in h.events]
    for i in extra:
        if i not in items:
            items[i] = catalog.get_item(i)
    return list(items.values())


def build_taxonomy(
    profiles: Sequence[InterestProfile],
    catalog: Catalog,
    *,
    histories: Mapping[str, UserHistory] | None = None,
    encoder: TextEncoder | str | None = None,
    n_domains: int | None = None,
    seed: int = 0,
    max_domains: int = MAX_DOMAINS,
    max_topics: int = MAX_TOPICS,
) -> Taxonomy:
    """Consolidate the users' own domains and topics into one shared tree (the ``taxonomy`` stage).

    ``histories`` only widens the item set (items seen in logs but missing
    from the catalogue are classified too); per-user features come from
    :meth:`Taxonomy.user_vectors`.
    """
    enc = encoder if encoder is not None and not isinstance(encoder, str) else get_encoder(encoder)
    d_nodes, t_nodes = collect_nodes(profiles)
    if not d_nodes:
        raise TaxonomyError("no profile has a domain with evidence; nothing to build a taxonomy from")
    items = _items(catalog, profiles, histories)
    item_ids = [it.item_id for it in items]
    item_x = enc.encode([item_text(it) for it in items])
    ivec = dict(zip(item_ids, item_x, strict=True))

    # L1, then re-homing: a topic node joins the global domain nearest to it, not always its
    # parent's, so a profile that lumps two interests into one domain node is split again.
    # Lumped nodes sit between clusters and blur them: when re-homing splits some, L1 is
    # clustered once more without them.
    xd = node_vectors(d_nodes, enc, ivec)
    xt = node_vectors(t_nodes, enc, ivec)
    d_labels, l1_scores, t_domain = _l1(xd, xt, n_domains, max_domains, seed)
    lumped = [k for k, n in enumerate(d_nodes) if len({int(t_domain[c]) for c in n.children}) > 1]
    pure = np.array([k for k in range(len(d_nodes)) if k not in set(lumped)], dtype=np.int64)
    if lumped and len(pure) >= 3:
        labels_pure, l1_scores, _ = _l1(xd[pure], xt[:0], n_domains, max_domains, seed)
        groups = sorted(set(labels_pure.tolist()))
        centroids = np.vstack([_unit(xd[pure][labels_pure == g].mean(axis=0)) for g in groups])
        d_labels = np.array(groups, dtype=np.int64)[(xd @ centroids.T).argmax(axis=1)]
        d_labels[pure] = labels_pure
        t_domain = _rehome(xt, xd[pure], labels_pure)
    groups = sorted(set(d_labels.tolist()))
    # L2, inside each global domain; topic clusters get global ids (g, local)
    t_cluster: dict[int, tuple[int, int]] = {}
    for g in groups:
        members = [k for k in range(len(t_nodes)) if t_domain[k] == g]
        if not members:
            continue
        labels, _ = choose_clusters(
            xt[members], k_max=max_topics, min_silhouette=MIN_TOPIC_SILHOUETTE, seed=seed
        )
        for k, lab in zip(members, labels, strict=True):
            t_cluster[k] = (g, int(lab))

    # order domains by users then nodes, topics likewise; give ids
    def users(nodes: list[Node]) -> int:
        return len({n.user_id for n in nodes})

    by_domain = {g: [d_nodes[k] for k in np.flatnonzero(d_labels == g)] for g in groups}
    with_topics = {g for g, _ in t_cluster.values()}
    domain_order = sorted(with_topics, key=lambda g: (-users(by_domain[g]), -len(by_domain[g]), g))
    topic_key: list[tuple[int, int]] = []
    domains: list[GlobalDomain] = []
    for new_g, g in enumerate(domain_order):
        nodes = by_domain[g]
        label, names, cats = describe(nodes, xd[d_labels == g], catalog)
        dom = GlobalDomain(
            id=f"d{new_g:02d}",
            label=label,
            n_nodes=len(nodes),
            n_users=users(nodes),
            names=names,
            categories=cats,
        )
        local: dict[int, list[int]] = {}
        for k, (gg, lab) in t_cluster.items():
            if gg == g:
                local.setdefault(lab, []).append(k)
        order = sorted(
            local, key=lambda lab: (-users([t_nodes[k] for k in local[lab]]), -len(local[lab]), lab)
        )
        for new_t, lab in enumerate(order):
            tn = [t_nodes[k] for k in local[lab]]
            t_label, t_names, t_cats = describe(tn, xt[local[lab]], catalog)
            dom.topics.append(
                GlobalTopic(
                    id=f"{dom.id}.t{new_t:02d}",
                    label=t_label,
                    n_nodes=len(tn),
                    n_users=users(tn),
                    names=t_names,
                    categories=t_cats,
                )
            )
            topic_key.append((g, lab))
        dom.n_users = len({t_nodes[k].user_id for ks in local.values() for k in ks})
        domains.append(dom)
    t_index = {key: k for k, key in enumerate(topic_key)}
    topic_domain = np.array([domain_order.index(g) for g, _ in topic_key], dtype=np.int64)

    # item labels from the nodes that cite them (majority), then the classifier
    votes: dict[str, Counter[int]] = {}
    for k, t in enumerate(t_nodes):
        for i in t.item_ids:
            votes.setdefault(i, Counter())[t_index[t_cluster[k]]] += 1
    cited = [i for i in item_ids if i in votes]
    y = np.array([votes[i].most_common(1)[0][0] for i in cited], dtype=np.int64)
    x_cited = np.vstack([ivec[i] for i in cited])
    clf = train_item_classifier(x_cited, y, topic_domain, seed=seed)

    topics_flat = [t for d in domains for t in d.topics]
    d_centroids = np.vstack([_unit(xd[d_labels == g].mean(axis=0)) for g in domain_order])
    t_centroids = np.vstack(
        [_unit(xt[[k for k, c in t_cluster.items() if c == key]].mean(axis=0)) for key in topic_key]
    )
    taxonomy = Taxonomy(
        domains=domains,
        encoder=enc.name,
        coef=clf.coef,
        intercept=clf.intercept,
        domain_centroids=d_centroids,
        topic_centroids=t_centroids,
        cited_items=set(cited),
        _encoder=enc,
    )
    _assign(taxonomy, item_ids, item_x)
    n_pruned = _prune_empty(taxonomy)
    if n_pruned:
        _assign(taxonomy, item_ids, item_x)
    _fill_sizes(taxonomy, catalog)
    topics_flat = taxonomy.topics
    domains = taxonomy.domains
    taxonomy.metrics = {
        "encoder": enc.name,
        "n_profiles": len(profiles),
        "n_domain_nodes": len(d_nodes),
        "n_topic_nodes": len(t_nodes),
        "n_items": len(item_ids),
        "n_cited_items": len(cited),
        "n_domains": len(domains),
        "n_topics": len(topics_flat),
        "domains_chosen_by": "given" if n_domains is not None else "silhouette",
        "l1_silhouette": {str(k): v for k, v in l1_scores.items()},
        "n_lumped_domain_nodes": len(lumped),
        "n_empty_topics_pruned": n_pruned,
        "classifier": clf.metrics,
    }
    return taxonomy


def _assign(taxonomy: Taxonomy, item_ids: list[str], item_x: np.ndarray) -> None:
    topics = taxonomy.topics
    taxonomy.assignments = {}
    for iid, (d, t, p, dp) in zip(item_ids, taxonomy.classify(item_x), strict=True):
        taxonomy.assignments[iid] = ItemAssignment(
            taxonomy.domains[d].id, topics[t].id, round(p, 4), round(dp, 4)
        )


def _prune_empty(taxonomy: Taxonomy) -> int:
    """Drop topics (and domains) the classifier gives no item; renumber ids. Returns topics dropped."""
    used = {a.topic_id for a in taxonomy.assignments.values()}
    keep = [k for k, t in enumerate(taxonomy.topics) if t.id in used]
    dropped = len(taxonomy.topics) - len(keep)
    if not dropped:
        return 0
    keep_ids = {taxonomy.topics[k].id for k in keep}
    domains = []
    d_keep = []
    for k, d in enumerate(taxonomy.domains):
        d.topics = [t for t in d.topics if t.id in keep_ids]
        if d.topics:
            domains.append(d)
            d_keep.append(k)
    taxonomy.coef = taxonomy.coef[keep]
    taxonomy.intercept = taxonomy.intercept[keep]
    taxonomy.topic_centroids = taxonomy.topic_centroids[keep]
    taxonomy.domain_centroids = taxonomy.domain_centroids[d_keep]
    for new_d, d in enumerate(domains):
        d.id = f"d{new_d:02d}"
        for new_t, t in enumerate(d.topics):
            t.id = f"{d.id}.t{new_t:02d}"
    taxonomy.domains = domains
    return dropped


def _rehome(xt: np.ndarray, xd: np.ndarray, d_labels: np.ndarray) -> np.ndarray:
    """Global domain of each topic node: the one whose domain-node centroid is nearest."""
    groups = sorted(set(d_labels.tolist()))
    if not len(xt):
        return np.zeros(0, np.int64)
    centroids = np.vstack([_unit(xd[d_labels == g].mean(axis=0)) for g in groups])
    return np.array(groups, dtype=np.int64)[(xt @ centroids.T).argmax(axis=1)]


def _l1(
    xd: np.ndarray, xt: np.ndarray, n_domains: int | None, max_domains: int, seed: int
) -> tuple[np.ndarray, dict[int, float], np.ndarray]:
    labels, scores = choose_clusters(xd, n_domains, k_max=max_domains, seed=seed)
    return labels, scores, _rehome(xt, xd, labels)


def _fill_sizes(taxonomy: Taxonomy, catalog: Catalog) -> None:
    """Item counts and example items (most confident, cited first) per domain and topic."""
    ranked = sorted(
        taxonomy.assignments.items(),
        key=lambda kv: (kv[0] not in taxonomy.cited_items, -kv[1].prob, kv[0]),
    )
    by_topic: dict[str, list[str]] = {}
    by_domain: dict[str, list[str]] = {}
    for iid, a in ranked:
        by_topic.setdefault(a.topic_id, []).append(iid)
        by_domain.setdefault(a.domain_id, []).append(iid)
    for d in taxonomy.domains:
        d.size = len(by_domain.get(d.id, []))
        for t in d.topics:
            tids = by_topic.get(t.id, [])
            t.size = len(tids)
            t.example_items = [catalog.get_item(i).label() for i in tids[:N_EXAMPLES]]
        # the domain's examples take turns across its topics
        firsts = [by_topic.get(t.id, []) for t in d.topics]
        mixed = [ids[k] for k in range(N_EXAMPLES) for ids in firsts if k < len(ids)]
        d.example_items = [catalog.get_item(i).label() for i in mixed[:N_EXAMPLES]]


def apply_taxonomy(
    taxonomy: Taxonomy,
    profiles: Sequence[InterestProfile],
    histories: Mapping[str, UserHistory] | None = None,
    *,
    catalog: Catalog | None = None,
) -> UserVectors:
    """Map profiles (new users, new items) onto an existing taxonomy without rebuilding it.

    Items the taxonomy has not seen are encoded with its encoder and
    classified (their text from ``catalog`` when given).
    """
    known = taxonomy.assignments
    cat = catalog or Catalog()
    new = [i for p in profiles for i in sorted(p.item_ids()) if i not in known]
    new += [e.item_id for h in (histories or {}).values() for e in h.events if e.item_id not in known]
    if catalog is not None:
        new += [i for i in catalog if i not in known]
    if new:
        taxonomy.assign_items([cat.get_item(i) for i in dict.fromkeys(new)])
    return taxonomy.user_vectors(profiles, histories)


__all__ = ["apply_taxonomy", "build_taxonomy"]
