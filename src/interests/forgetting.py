"""Forget users: remove them from every artifact under some folders (``interests forget``).

:func:`forget` walks the folders and files it is given and, for every file:

* JSON Lines (profiles, ``*.history.jsonl``, ``*.update.jsonl``, error records,
  the API's events log, quarantine rows, the ``--partitions`` spill files):
  drops the lines of the users (``user_id`` field, the first element of a
  partition row, or a quarantined row whose raw text holds the id as a field).
  The other lines are kept byte for byte.
* Parquet with a ``user_id`` column (taxonomy user vectors): drops the rows.
* a trained model folder: drops the users' rows without retraining and marks
  the model (:mod:`interests.recsys.forget_rows`).
* reports of ``interests report`` (``.html``, ``.md``) and orphaned ``*.tmp``
  files that name a user: deleted (a report is rendered from the profiles:
  render it again). Pages not made by ``interests report`` are left (and listed).

Every rewrite is atomic (temp file, fsync, rename): a crash leaves each file
old or new, never torn, and running :func:`forget` again finishes the job.
Then every file is read again, bytes and all, and any that still names a user
is listed in :attr:`ForgetReceipt.left` (a format this module does not know,
logs you passed): the command fails on those rather than claim the user is gone.
Files of pseudonyms searched without ``hash_key`` are listed in
:attr:`ForgetReceipt.needs_key` (the command fails on those too).

Users are given by raw id; with ``hash_key`` (the key of ``--hash-user-ids``)
their pseudonyms are forgotten too. Logs are the users' source data: a run
over logs that still hold a user makes the user again; purge them at the source.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .profile.privacy import hash_user_id
from .profile.store import replace_bytes

#: fields of a quarantined row's raw text: a user id is one of them
_FIELD_SPLIT = re.compile(r"[,\t;|\s\"'{}\[\]:]+")
REPORT_SUFFIXES = (".html", ".htm", ".md", ".markdown")
#: what ``interests report`` writes at the top of a page (a page of yours that names a user is left)
_REPORT_MARK = re.compile(rb'<meta name="generator" content="interests |Generated [^\n]* by interests \d')


@dataclass
class Touched:
    """One file ``forget`` changed: ``action`` is ``rewritten`` or ``deleted``."""

    path: str
    action: str
    rows: int
    what: str


@dataclass
class ForgetReceipt:
    """What :func:`forget` did: files touched, rows removed, what is left and what needs a retrain."""

    users: int
    ids: int  # ids looked for (raw and hashed)
    files_scanned: int = 0
    touched: list[Touched] = field(default_factory=list)
    left: dict[str, int] = field(default_factory=dict)  # file -> occurrences of an id still in it
    #: files of pseudonyms (``--hash-user-ids``) searched without the key: the users may still be there
    needs_key: list[str] = field(default_factory=list)
    retrain: dict[str, list[str]] = field(default_factory=dict)  # model folder -> parts to retrain
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.touched)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.touched)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"changed": self.changed, "rows": self.rows}


def _id_pattern(ids: Iterable[str]) -> re.Pattern[bytes]:
    alts = b"|".join(re.escape(i.encode("utf-8")) for i in sorted(ids, key=len, reverse=True))
    return re.compile(rb"(?<![A-Za-z0-9_])(?:" + alts + rb")(?![A-Za-z0-9_])")


def _line_user(line: bytes, ids: set[str]) -> bool:
    """Whether one JSON line belongs to one of ``ids``."""
    try:
        d = json.loads(line)
    except ValueError:  # a torn last line: goes if it names a user at all
        return any(f in ids for f in _FIELD_SPLIT.split(line.decode("utf-8", "replace")))
    if isinstance(d, dict):
        if str(d.get("user_id")) in ids:
            return True
        raw = d.get("raw")
        if isinstance(raw, str) and "reason" in d:  # a quarantined row: the id is one of its fields
            return any(f in ids for f in _FIELD_SPLIT.split(raw))
        return False
    return isinstance(d, list) and bool(d) and str(d[0]) in ids  # a --partitions spill row


def _forget_jsonl(path: Path, ids: set[str], pattern: re.Pattern[bytes]) -> int:
    data = path.read_bytes()
    if not pattern.search(data):
        return 0
    lines = data.splitlines(keepends=True)
    kept = [ln for ln in lines if not (ln.strip() and _line_user(ln, ids))]
    if len(kept) < len(lines):
        replace_bytes(path, b"".join(kept))
    return len(lines) - len(kept)


def _forget_parquet(path: Path, ids: set[str]) -> int:
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException):
        return 0
    if "user_id" not in table.column_names:
        return 0
    drop = pc.is_in(table["user_id"].cast(pa.string()), value_set=pa.array(sorted(ids), pa.string()))
    n = int(pc.sum(drop).as_py() or 0)
    if n:
        buf = io.BytesIO()
        pq.write_table(table.filter(pc.invert(drop)), buf)
        replace_bytes(path, buf.getvalue())
    return n


def _files(paths: Sequence[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise ConfigError(f"{p}: no such file or folder")
    return list(dict.fromkeys(out))


def _model_folders(paths: Sequence[str | Path]) -> list[Path]:
    from .recsys.forget_rows import PENDING, is_model_folder

    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            cands = [p, *sorted(d for d in p.rglob("*") if d.is_dir())]
            found.extend(d for d in cands if is_model_folder(d) or (d / PENDING).is_file())
    return list(dict.fromkeys(found))


def forget(
    users: Iterable[str],
    paths: Sequence[str | Path],
    *,
    hash_key: bytes | None = None,
) -> ForgetReceipt:
    """Remove ``users`` from every artifact in ``paths`` (folders are walked); see the module docstring.

    ``hash_key``: the key profiles were written with under ``--hash-user-ids``
    (``$INTERESTS_HASH_KEY``); the users' pseudonyms are forgotten with their
    raw ids. Returns a :class:`ForgetReceipt`; a second run touches nothing.
    """
    from .recsys.forget_rows import drop_model_users

    t0 = time.perf_counter()
    raw = [str(u) for u in users if str(u)]
    if not raw:
        raise ConfigError("name at least one user to forget")
    if not paths:
        raise ConfigError("name the folders or files to forget the users in (--from)")
    ids = set(raw) | ({hash_user_id(u, hash_key) for u in raw} if hash_key else set())
    pattern = _id_pattern(ids)
    receipt = ForgetReceipt(users=len(set(raw)), ids=len(ids))
    models = _model_folders(paths)
    for folder in models:
        done = drop_model_users(folder, ids)
        if done["users"] or done["finished"]:
            for f in done["files"]:
                receipt.touched.append(Touched(f, "rewritten", done["users"], "model rows"))
        receipt.retrain[str(folder)] = _retrain_of(folder)
    in_models = {f for m in models for f in m.iterdir()}
    for f in _files(paths):
        if f in in_models or not f.exists():
            continue
        name = f.name
        if name.endswith(".tmp") or name.endswith(REPORT_SUFFIXES):
            data = f.read_bytes()
            if pattern.search(data) and (name.endswith(".tmp") or _REPORT_MARK.search(data[:4096])):
                f.unlink()
                what = "orphaned temp file" if name.endswith(".tmp") else "report (render it again)"
                receipt.touched.append(Touched(str(f), "deleted", 0, what))
        elif name.endswith(".jsonl"):
            if hash_key is None and _pseudonymous(f):
                receipt.needs_key.append(str(f))
            n = _forget_jsonl(f, ids, pattern)
            if n:
                receipt.touched.append(Touched(str(f), "rewritten", n, "lines"))
        elif name.endswith(".parquet"):
            n = _forget_parquet(f, ids)
            if n:
                receipt.touched.append(Touched(str(f), "rewritten", n, "rows"))
    files = _files(paths)
    receipt.files_scanned = len(files)
    for f in files:
        hits = _occurrences(f, pattern)
        if hits:
            receipt.left[str(f)] = hits
    receipt.seconds = time.perf_counter() - t0
    return receipt


def _pseudonymous(path: Path) -> bool:
    """Whether the first record of a JSON Lines file names its user by a pseudonym."""
    from .profile.privacy import is_hashed

    with path.open("rb") as f:
        first = f.readline()
    try:
        d = json.loads(first)
    except ValueError:
        return False
    return isinstance(d, dict) and is_hashed(str(d.get("user_id", "")))


def _retrain_of(folder: Path) -> list[str]:
    from .recsys.forget_rows import NEEDS_RETRAIN
    from .recsys.io import CONFIG_FILE

    try:
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return list((meta.get("forgotten") or {}).get("retrain", NEEDS_RETRAIN)) if meta.get("forgotten") else []


def _occurrences(path: Path, pattern: re.Pattern[bytes]) -> int:
    """How often an id occurs in ``path``'s bytes (Parquet and safetensors included: ids are stored
    as plain UTF-8 there; a compressed column could hide one, so Parquet is also read as a table)."""
    data = path.read_bytes()
    hits = len(pattern.findall(data))
    if path.suffix == ".parquet" and not hits:
        try:
            import pyarrow.parquet as pq

            text = json.dumps(pq.read_table(path).to_pylist(), default=str).encode("utf-8")
            hits = len(pattern.findall(text))
        except Exception:  # not readable as Parquet: its bytes were searched
            pass
    return hits


__all__ = ["ForgetReceipt", "Touched", "forget"]
