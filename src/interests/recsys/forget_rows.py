"""Forget users in a trained model folder without retraining (``interests forget``).

A saved model (:mod:`interests.recsys.io`) holds three kinds of user data:

* per-user rows: the training histories (``known.*``), the user feature rows
  (``feats.*``), the ids (``config.json`` ``user_ids``) and the nodes each
  profile cited (``profile_nodes``). They are dropped here; the other users'
  rows are kept as they are, so their recommendations are scored from the same
  rows by the same weights.
* the domain transitions (``explore.*``): counts over the training histories,
  recomputed exactly from the histories that remain.
* what training learnt from everyone: the two-tower weights (``net.*``) and the
  backbone (EASE / ItemKNN item-item matrix, or SASRec's weights). A forgotten
  user's influence stays there until the model is retrained; ``config.json``
  says so in ``forgotten`` (``interests recommend`` and ``interests api``
  print it; ``interests train`` writes a model without it).

The weights and the config are two files: both are written to temp files
first, a journal (``forget.pending.json``) names the renames, then the renames
run and the journal goes. A crash before the journal leaves the old model; a
crash after it is finished by the next ``forget`` (:func:`finish_pending`),
and :func:`~interests.recsys.io.load_model` refuses the folder until then.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from ..profile.store import fsync_dir, replace_bytes, write_temp
from .io import CONFIG_FILE, WEIGHTS_FILE

PENDING = "forget.pending.json"
#: the parts of a model that still carry a forgotten user's influence until a retrain
NEEDS_RETRAIN = ["net (two-tower weights)", "backbone (item-item matrix or SASRec weights)"]


def is_model_folder(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def finish_pending(folder: Path) -> bool:
    """Finish the renames of a ``forget`` that was interrupted in ``folder``; True when there were some."""
    journal = folder / PENDING
    if not journal.is_file():
        return False
    for tmp, final in json.loads(journal.read_text(encoding="utf-8")):
        if (folder / tmp).exists():
            os.replace(folder / tmp, folder / final)
    fsync_dir(folder)
    journal.unlink()
    fsync_dir(folder)
    return True


def _kept_histories(t: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    lens = t["known.lens"]
    cuts = np.cumsum(lens)[:-1]
    out = {"known.lens": lens[keep]}
    for name in ("known.items", "known.times", "known.ratings"):
        parts = np.split(t[name], cuts) if len(lens) else []
        kept = [p for p, k in zip(parts, keep, strict=True) if k]
        out[name] = np.concatenate(kept) if kept else t[name][:0]
    return out


def _transitions(folder: Path, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The domain transitions of the remaining training histories (what a fit without the users gives)."""
    from .explore import Transitions
    from .io import load_towers

    model = load_towers(folder)
    dom, names = model.explore_domains()
    items = [x for x, k in zip(model.known.items, keep, strict=True) if k]
    return Transitions.fit(items, dom, len(names)).to_arrays("explore.")


def drop_model_users(folder: str | Path, ids: Collection[str]) -> dict[str, Any]:
    """Drop the rows of ``ids`` from the model in ``folder``; what was done (``users`` removed, ``files``).

    Nothing is written when no id is in the model (a second run changes nothing).
    """
    from safetensors.numpy import load_file, save

    d = Path(folder)
    finished = finish_pending(d)
    meta: dict[str, Any] = json.loads((d / CONFIG_FILE).read_text(encoding="utf-8"))
    users: list[str] = list(meta.get("user_ids") or [])
    wanted = set(ids)
    keep = np.array([u not in wanted for u in users], dtype=bool)
    nodes = meta.get("profile_nodes") or {}
    cited = [u for u in nodes if u in wanted]
    removed = int((~keep).sum())
    if not removed and not cited:
        return {"users": 0, "files": [], "finished": finished}
    t = load_file(str(d / WEIGHTS_FILE))
    n = len(users)
    if "known.lens" in t and len(t["known.lens"]) == n:
        t |= _kept_histories(t, keep)
    for name in [k for k in t if k.startswith("feats.")]:
        if t[name].shape[:1] == (n,):
            t[name] = t[name][keep]
    if "explore.counts" in t and removed:
        t |= _transitions(d, keep)
    meta["user_ids"] = [u for u, k in zip(users, keep, strict=True) if k]
    meta["profile_nodes"] = {u: v for u, v in nodes.items() if u not in wanted}
    before = meta.get("forgotten") or {}
    meta["forgotten"] = {
        "users": int(before.get("users", 0)) + removed,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "retrain": NEEDS_RETRAIN,
    }
    weights = write_temp(d / WEIGHTS_FILE, save({k: np.ascontiguousarray(v) for k, v in t.items()}))
    config = write_temp(d / CONFIG_FILE, (json.dumps(meta, ensure_ascii=False) + "\n").encode("utf-8"))
    plan = [[weights.name, WEIGHTS_FILE], [config.name, CONFIG_FILE]]
    replace_bytes(d / PENDING, json.dumps(plan).encode("utf-8"))  # from here on the new model wins
    finish_pending(d)
    return {"users": removed, "files": [str(d / WEIGHTS_FILE), str(d / CONFIG_FILE)], "finished": finished}


def forgotten_in(folder: str | Path) -> dict[str, Any] | None:
    """The ``forgotten`` mark of the model in ``folder`` (None: none, or no model there)."""
    try:
        meta = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("forgotten") or None


def forgotten_note(model: Any) -> str | None:
    """The line ``recommend`` and ``api`` print for a model (or model folder) users were forgotten
    from, else None."""
    info = forgotten_in(model) if isinstance(model, str | Path) else getattr(model, "forgotten", None)
    if not info:
        return None
    return (
        f"{info.get('users', 0)} user(s) were forgotten from this model without a retrain (their rows "
        f"are gone; {', '.join(info.get('retrain', NEEDS_RETRAIN))} still carry what training learnt "
        "from them): retrain with `interests train` to remove it"
    )


__all__ = [
    "NEEDS_RETRAIN",
    "PENDING",
    "drop_model_users",
    "finish_pending",
    "forgotten_in",
    "forgotten_note",
    "is_model_folder",
]
