"""Profile versions with validity: ``interests profile --at`` over an update sequence of 3 batches.

Batch k holds the first k thirds of every user's events: ``extract`` on batch
1 (a scripted model), ``update`` with batches 2 and 3, so every user has 3
versions, two of them closed in the history.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from interests.cli import cli
from test_update import _namer

import interests
from interests.events import UserHistory
from interests.llm.fake import FakeBackend
from interests.profile.extract import extract_profiles
from interests.profile.update import read_history, update_profiles
from interests.profile.versions import NoVersionError, profile_versions, version_at
from interests.synthetic import generate_planted_b
from interests.synthetic.profiles import planted_histories


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = generate_planted_b(n_users=6, categories=True)
    full = dict(planted_histories(data))
    batches = [
        {u: UserHistory(u, h.events[: len(h.events) * k // 3]) for u, h in full.items()} for k in (1, 2, 3)
    ]
    out = tmp_path_factory.mktemp("versions") / "profiles.jsonl"
    backend = FakeBackend(_namer(data.catalog))
    assert extract_profiles(batches[0], catalog=data.catalog, output=out, backend=backend).profiles == 6
    for b in batches[1:]:
        res = update_profiles(b, profiles=out, catalog=data.catalog, backend=backend)
        assert res.unchanged == 0 and res.errors == 0
    return {"out": out, "batches": batches, "users": sorted(full)}


def test_every_version_holds_its_event_and_wall_time_intervals(sequence: dict[str, Any]) -> None:
    out, batches = sequence["out"], sequence["batches"]
    checked = 0
    for u in sequence["users"]:
        versions = profile_versions(out, u)
        assert len(versions) == 3 and [v.number for v in versions] == [1, 2, 3]
        ends = [max(e.ts for e in b[u].events if e.ts is not None) for b in batches]
        for k, v in enumerate(versions):
            prov = v.profile.provenance
            assert prov.data_to == _iso(ends[k]) and prov.data_from == _iso(batches[0][u].events[0].ts)
            assert prov.valid_from is not None and v.profile.stats.n_events == len(batches[k][u].events)
            nxt = versions[k + 1] if k < 2 else None
            # closed, not deleted: valid_to is when the next version was written; null for the current one
            assert prov.valid_to == (nxt.profile.provenance.valid_from if nxt else None)
            # event time: from the version's newest event up to (not including) the next version's
            end = datetime.fromtimestamp(ends[k], tz=timezone.utc)
            inside = [end] + (
                [datetime.fromtimestamp(ends[k + 1], tz=timezone.utc) - timedelta(seconds=1)]
                if nxt
                else [end + timedelta(days=3650)]
            )
            for at in inside:
                assert version_at(out, u, at).number == v.number, (u, k, at)
                assert interests.profile_at(out, u, at) == v.profile
            # wall time: [valid_from, valid_to)
            written = datetime.fromisoformat(prov.valid_from.replace("Z", "+00:00"))
            assert version_at(out, u, written, by="written").number == v.number
            if nxt is not None:
                just_before = datetime.fromisoformat(nxt.profile.provenance.valid_from.replace("Z", "+00:00"))
                assert (
                    version_at(out, u, just_before - timedelta(microseconds=1), by="written").number
                    == v.number
                )
            checked += 1
        # inside the first version's own data span, only it can answer; before any data: none
        first = datetime.fromisoformat(versions[0].profile.provenance.data_from.replace("Z", "+00:00"))
        assert version_at(out, u, first).number == 1
        with pytest.raises(NoVersionError, match="no version"):
            version_at(out, u, first - timedelta(seconds=1))
        with pytest.raises(NoVersionError, match="written time"):
            version_at(out, u, "2000-01-01", by="written")
    assert checked == 18
    history = read_history(sequence["out"].with_name("profiles.history.jsonl"))
    assert len(history) == 12 and all(
        h["profile"]["provenance"]["valid_to"] == h["valid_to"] for h in history
    )


def test_a_bare_date_is_the_end_of_that_day(sequence: dict[str, Any]) -> None:
    out, u = sequence["out"], sequence["users"][0]
    v2 = profile_versions(out, u)[1]
    day = v2.profile.provenance.data_to[:10]
    assert version_at(out, u, day).number >= 2  # the day's last event is in


def test_cli_profile_at(sequence: dict[str, Any]) -> None:
    out, u = sequence["out"], sequence["users"][0]
    versions = profile_versions(out, u)
    runner = CliRunner()
    for v in versions:
        res = runner.invoke(
            cli, ["profile", u, "--profiles", str(out), "--at", v.profile.provenance.data_to, "--json"]
        )
        assert res.exit_code == 0, res.output
        assert interests.InterestProfile.model_validate_json(res.stdout) == v.profile
        res = runner.invoke(
            cli,
            [
                "profile",
                u,
                "--profiles",
                str(out),
                "--at",
                v.profile.provenance.valid_from,
                "--by",
                "written",
            ],
        )
        assert res.exit_code == 0 and res.stdout.startswith(f"{u}: version {v.number} ")
    res = runner.invoke(cli, ["profile", u, "--profiles", str(out), "--versions", "--json"])
    assert [r["version"] for r in json.loads(res.stdout)] == [1, 2, 3]
    assert json.loads(res.stdout)[-1]["current"] is True
    res = runner.invoke(cli, ["profile", u, "--profiles", str(out), "--at", "1990-01-01"])
    assert res.exit_code == 1 and "no version" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["profile", u, "--profiles", str(out), "--at", "yesterday"])
    assert res.exit_code == 1 and "not a date" in res.output
    res = runner.invoke(cli, ["profile", "nobody", "--profiles", str(out)])
    assert res.exit_code == 1 and "no profile for user 'nobody'" in res.output


def test_files_written_before_schema_1_3_are_still_answered(sequence: dict[str, Any], tmp_path: Path) -> None:
    """Old versions have no data_*/valid_* fields: the time patterns and created_at stand in."""
    out, u = sequence["out"], sequence["users"][0]
    old = tmp_path / "profiles.jsonl"
    for src, dst in (
        (out, old),
        (out.with_name("profiles.history.jsonl"), old.with_name("profiles.history.jsonl")),
    ):
        lines = []
        for line in src.read_text().splitlines():
            d = json.loads(line)
            p = d.get("profile", d)
            p["schema_version"] = "1.2"
            for k in ("data_from", "data_to", "valid_from", "valid_to"):
                p["provenance"].pop(k)
            lines.append(json.dumps(d))
        dst.write_text("\n".join(lines) + "\n")
    versions = profile_versions(old, u)
    assert len(versions) == 3
    last = versions[-1].profile
    assert version_at(old, u, last.time_patterns.last_seen).profile == last


def test_reports_show_how_the_domains_moved_across_versions(sequence: dict[str, Any], tmp_path: Path) -> None:
    """A report of a profiles file with a history: one bar per version, holding its domains' weights."""
    import re

    from interests.report import write_report

    out, user = sequence["out"], sequence["users"][0]
    versions = profile_versions(out, user)
    html = write_report(tmp_path / "u.html", out, user=user).read_text(encoding="utf-8")
    figure = re.search(r'<figure data-role="versions">(.*?)</figure>', html, re.S)
    assert figure is not None
    bars = re.findall(r'<rect class="version" data-domain="([^"]*)" data-weight="([0-9.]+)"', figure.group(1))
    want = [(d.name, round(d.weight, 4)) for v in versions for d in v.profile.domains]
    assert [(n, float(w)) for n, w in bars] == want  # every version's domains, oldest first
    md = write_report(tmp_path / "u.md", out, user=user).read_text(encoding="utf-8")
    assert md.count("| v") == len(versions) and "Domains across profile versions" in md
    # a profiles file without a history: no versions chart
    alone = tmp_path / "alone" / "profiles.jsonl"
    alone.parent.mkdir()
    alone.write_text(out.read_text(encoding="utf-8"), encoding="utf-8")
    assert 'data-role="versions"' not in write_report(tmp_path / "a.html", alone, user=user).read_text()
