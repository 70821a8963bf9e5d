"""Every stage run over a small world, into one working folder: what ``interests forget`` must clean.

Used by ``tests/test_forget.py`` and ``bench/forget.py``. The logs live apart
(``<root>/logs``: the users' source data, which forget does not own); the
working folder (``<root>/work``) gets what extract (raw and hashed ids),
update, the taxonomy, training, the reports and an API run with posted
events write. Every user's reviews carry a marker of their own
(:func:`secret`), and the fake model copies a review into the profile's
summary, so review text reaches the profiles as a real model's words can.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from interests.cli import cli

from interests.events import Catalog
from interests.ingest import read_logs
from interests.llm.base import GenRequest
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles
from interests.profile.privacy import hash_user_id
from interests.profile.update import update_profiles
from interests.synthetic import generate, write_logs

KEY = b"a test key of enough characters"
FAILS = "u002"  # the fake model answers this user with broken JSON: an error record
_SECRET = re.compile(r"zq[a-p]{10}q")
_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def secret(user: str) -> str:
    """The marker in every review of ``user`` (letters only: a summary holds no digits; no id inside,
    so text and ids are counted apart)."""
    return "zq" + hashlib.sha256(user.encode()).hexdigest()[:10].translate(_LETTERS) + "q"


def _script(request: GenRequest, attempt: int) -> tuple[str, str]:
    if request.key in (FAILS, hash_user_id(FAILS, KEY)):
        return '{"summary": "broken ' + secret(FAILS) + '", ', "length"
    answer = schema_answer(request.schema())
    prompt = " ".join(str(m.get("content", "")) for m in request.messages)
    found = _SECRET.search(prompt)
    answer["summary"] = f"Quotes their review: {found.group(0)}." if found else "Likes what the log shows."
    return json.dumps(answer), "stop"


def _run(args: list[str]) -> str:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def build_world(root: Path, n_users: int = 24, api_users: int = 6) -> dict[str, Any]:
    """Run extract, update, taxonomy, train, report and the API over ``n_users`` users under ``root``."""
    data = generate(n_users=n_users, events_per_user=(20, 30), seed=3)
    users = sorted({e.user_id for e in data.events})
    data.events[:] = [
        dataclasses.replace(e, text=f"{e.text or 'fine'} {secret(e.user_id)}", event="review")
        if k % 3 == 0
        else e
        for k, e in enumerate(data.events)
    ]
    logs_dir, work = root / "logs", root / "work"
    files = write_logs(data, logs_dir)
    with files["events"].open("a", encoding="utf-8") as f:  # a bad row per user: the quarantine's raw text
        for u in users:
            f.write(f"{u},{next(iter(data.catalog))},5,not a time,{secret(u)},review\n")
    catalog = str(files["catalog"])
    profiles = work / "profiles.jsonl"
    logs = read_logs([files["events"]], catalog=catalog, quarantine=work / "profiles.quarantine.jsonl")
    extract_profiles(logs, output=profiles, backend=FakeBackend(_script), batch_size=8)
    hashed = work / "hashed" / "profiles.jsonl"
    extract_profiles(logs, output=hashed, backend=FakeBackend(_script), batch_size=8, hash_key=KEY)
    # new events for half the users: update replaces their profiles and keeps the old ones in history
    more = logs_dir / "more.csv"
    last = max(e.ts or 0.0 for e in data.events)
    items = list(data.catalog)
    with more.open("w", encoding="utf-8") as f:
        f.write("user,item,rating,timestamp,review,type\n")
        for n, u in enumerate(users[::2]):
            for k in range(3):
                ts = last + 86400 * (k + 1) + n
                f.write(f"{u},{items[(n * 7 + k) % len(items)]},4,{ts},{secret(u)} again,review\n")
    both = read_logs([files["events"], more], catalog=catalog, quarantine=work / "profiles.quarantine.jsonl")
    update_profiles(both, profiles=profiles, backend=FakeBackend(_script), llm=False)
    log_args = ["--logs", str(files["events"]), "--logs", str(more), "--catalog", catalog]
    _run(["taxonomy", "build", str(profiles), *log_args, "-o", str(work / "taxonomy")])
    model = work / "model"
    taxonomy = ["--profiles", str(profiles), "--taxonomy", str(work / "taxonomy")]
    quarantine = ["--quarantine", str(work / "train.quarantine.jsonl")]
    _run(["train", *log_args, *taxonomy, "-o", str(model), "--epochs", "2", *quarantine])
    report = ["-o", str(work / "report.html")]
    _run(["report", str(profiles), "--all", *log_args, "--model", str(model), *report])
    _run(["report", str(profiles), "--user", users[0], "-o", str(work / f"{users[0]}.md")])
    _api_run(model, profiles, data.catalog, users[:api_users])
    return {
        "root": root,
        "work": work,
        "logs": logs_dir,
        "users": users,
        "model": model,
        "profiles": profiles,
    }


def _api_run(model_dir: Path, profiles: Path, catalog: Catalog, users: list[str]) -> None:
    """Post events with reviews for ``users`` (and one user new to the model) through the API."""
    from fastapi.testclient import TestClient

    from interests.api import create_app
    from interests.profile.store import read_profiles
    from interests.recsys import TwoTower

    model = TwoTower.load(model_dir)
    app = create_app(
        model,
        read_profiles(profiles),
        catalog=catalog,
        events_log=profiles.with_name("profiles.events.jsonl"),
    )
    item = model.known.item_ids[0]
    events = [{"user_id": u, "item_id": item, "rating": 5, "text": f"posted {secret(u)}"} for u in users]
    with TestClient(app) as client:
        r = client.post("/events", json={"events": events})
        assert r.status_code == 200, r.text
        app.state.interests.queue.wait_idle(30)


def occurrences(folder: Path, needles: list[str]) -> dict[str, int]:
    """Every file under ``folder`` (any format, read as bytes) -> how often any needle occurs, where > 0."""
    pattern = re.compile(
        rb"(?<![A-Za-z0-9_])(?:" + b"|".join(re.escape(n.encode()) for n in needles) + rb")(?![A-Za-z0-9_])"
    )
    out: dict[str, int] = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            data = f.read_bytes()
            if data[:4] == b"PAR1":  # Parquet may compress a column: its values are searched too
                import pyarrow.parquet as pq

                data += json.dumps(pq.read_table(f).to_pylist(), default=str).encode()
            n = len(pattern.findall(data))
            if n:
                out[str(f.relative_to(folder))] = n
    return out


def needles(users: list[str]) -> list[str]:
    """Raw ids, pseudonyms and review markers of ``users``."""
    return [*users, *(hash_user_id(u, KEY) for u in users), *(secret(u) for u in users)]
