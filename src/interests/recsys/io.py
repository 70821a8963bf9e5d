"""Saving and loading a fitted model (:class:`~interests.recsys.towers.FittedTowers`) without pickle.

A model folder holds ``config.json`` (format version, the config dataclass,
item and user ids, titles, taxonomy node ids, catalogue category names,
training log) and ``model.safetensors`` (network weights, the sparse EASE
backbone, the text basis, per-user features, the known histories, every
item's catalogue categories and the domain transition matrix used by
exploration).

Each user feature group (:data:`~interests.recsys.features.USER_GROUPS`)
saves its rows as ``feats.<name>`` and its projection under the network's
``<module_name>``; the config lists the groups the model was built with.

Format 2 added the categories and the transitions; a format 1 folder still
loads: it steers by taxonomy nodes only (no category names were kept) and
rebuilds the transitions from its saved training histories on first use.
Format 3 records the user groups in the config (``user_groups``); folders of
formats 1 and 2 have the three groups of that time, :data:`LEGACY_GROUPS`.
Format 4 names the backbone's kind in the config (``backbone_kind``): EASE or
ItemKNN weights under ``backbone.indptr/indices/data`` as before, or a SASRec
backbone's network under ``backbone.<parameter>``; folders of formats 1-3
hold EASE weights. Format 5 keeps how the inputs were chosen on valid
(``input_choice``, :mod:`interests.recsys.select`; the chosen inputs
themselves are the config's ``use_*`` switches, saved since format 1);
older folders load with ``input_choice`` ``None``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interests.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .towers import FittedTowers

#: bumped when a saved model folder can no longer be read by this code
FORMAT_VERSION = 5
#: older formats this code still reads
READABLE = (1, 2, 3, 4, 5)
#: the user groups of every model saved before format 3 (which did not list them)
LEGACY_GROUPS = ["profile", "taxonomy", "l3"]
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_towers(model: FittedTowers, out: Path) -> Path:
    """Write ``model`` to the folder ``out`` (created); returns ``out``."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    k = model.known
    t: dict[str, np.ndarray] = {
        f"net.{n}": v.detach().cpu().numpy().copy() for n, v in model.net.state_dict().items()
    }
    if model.backbone is not None:
        t |= model.backbone.to_arrays("backbone.")
    if model.text_basis is not None:
        t["text_basis"] = model.text_basis
    t |= model.feats.to_arrays("feats.")
    lens = np.array([len(x) for x in k.items], dtype=np.int64)
    t |= {
        "known.lens": lens,
        "known.items": np.concatenate(k.items) if len(lens) else np.zeros(0, np.int64),
        "known.times": np.concatenate(k.times) if len(lens) else np.zeros(0),
        "known.ratings": np.concatenate(k.ratings) if len(lens) else np.zeros(0),
        "nodes.domain": model.nodes.domain,
        "nodes.topic": model.nodes.topic,
        "nodes.topic_domain": model.nodes.topic_domain,
        "domains": model.domains,
    }
    if model.categories is not None:
        t |= {"categories.indptr": model.categories.indptr, "categories.indices": model.categories.indices}
    if model.transitions is not None:
        t |= model.transitions.to_arrays("explore.")
    save_file({n: np.ascontiguousarray(v) for n, v in t.items()}, str(out / WEIGHTS_FILE))
    meta = {
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "item_ids": k.item_ids,
        "user_ids": k.user_ids,
        "titles": model.titles,
        "scale": model.scale,
        "ref_time": model.ref_time,
        "node_domain_ids": model.nodes.domain_ids,
        "node_topic_ids": model.nodes.topic_ids,
        "node_labels": model.nodes.labels,
        "profile_nodes": model.profile_nodes,
        "category_names": model.categories.names if model.categories is not None else None,
        "train_log": asdict(model.train_log) if model.train_log is not None else None,
        "input_choice": model.input_choice,
    }
    if model.forgotten:  # users dropped by `interests forget` since this model was trained
        meta["forgotten"] = model.forgotten
    (out / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
    # safetensors writes through a private temp file (0600): give the weights the config's mode (umask)
    os.chmod(out / WEIGHTS_FILE, (out / CONFIG_FILE).stat().st_mode & 0o777)
    return out


def load_towers(folder: Path) -> FittedTowers:
    """The model saved in ``folder`` by :func:`save_towers` (any format of :data:`READABLE`)."""
    import torch
    from safetensors.numpy import load_file

    from .backbone import load_backbone
    from .data import Histories
    from .explore import Transitions
    from .features import ItemNodes, UserFeatures
    from .model import TwoTowerConfig, TwoTowerNet
    from .steer import ItemCategories
    from .towers import FittedTowers, LazyEncoder
    from .train import TrainLog

    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ConfigError(
            f"{folder} is not a model folder (needs {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "train one with `interests train`"
        )
    if (folder / "forget.pending.json").is_file():
        raise ConfigError(
            f"{folder}: an `interests forget` was interrupted while rewriting this model; "
            "run the same `interests forget` again to finish it"
        )
    meta: dict[str, Any] = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    if meta.get("format_version") not in READABLE:
        raise ConfigError(
            f"{folder}: model format {meta.get('format_version')} is not one of "
            f"{', '.join(map(str, READABLE))}; retrain"
        )
    t = load_file(str(folder / WEIGHTS_FILE))
    if meta["format_version"] < 3:
        meta["config"]["user_groups"] = LEGACY_GROUPS
    if meta["format_version"] < 4:
        meta["config"]["backbone_kind"] = "ease"
    cfg = TwoTowerConfig.from_dict(meta["config"])
    net = TwoTowerNet(cfg)
    net.load_state_dict({n[4:]: torch.from_numpy(v) for n, v in t.items() if n.startswith("net.")})
    net.eval()
    cuts = np.cumsum(t["known.lens"])[:-1]
    known = Histories(
        meta["user_ids"],
        meta["item_ids"],
        np.split(t["known.items"], cuts),
        np.split(t["known.times"], cuts),
        np.split(t["known.ratings"], cuts),
    )
    nodes = ItemNodes(
        t["nodes.domain"],
        t["nodes.topic"],
        meta["node_domain_ids"],
        meta["node_topic_ids"],
        t["nodes.topic_domain"],
        meta.get("node_labels") or {},
    )
    categories = None
    if "categories.indptr" in t and meta.get("category_names") is not None:
        categories = ItemCategories(
            t["categories.indptr"], t["categories.indices"], list(meta["category_names"])
        )
    sc = meta.get("scale")
    log = meta.get("train_log")
    return FittedTowers(
        cfg,
        net,
        known,
        UserFeatures.from_arrays(t, cfg.user_groups, "feats."),
        nodes,
        backbone=load_backbone(t, "backbone.", cfg.n_items, cfg),
        text_basis=t.get("text_basis"),
        titles=meta["titles"],
        domains=t["domains"],
        scale=(float(sc[0]), float(sc[1])) if sc else None,
        ref_time=meta.get("ref_time"),
        profile_nodes=meta.get("profile_nodes") or {},
        categories=categories,
        transitions=Transitions.from_arrays(t, "explore."),  # None in format 1: rebuilt on use
        train_log=TrainLog(**{k: v for k, v in log.items() if k in TrainLog.__dataclass_fields__})
        if log
        else None,
        input_choice=meta.get("input_choice"),
        forgotten=meta.get("forgotten"),
        encoder=LazyEncoder(cfg.encoder),
    )


__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "LEGACY_GROUPS",
    "READABLE",
    "WEIGHTS_FILE",
    "load_towers",
    "save_towers",
]
