"""Profile reports: content, numbers, escaping, Markdown, CLI, recommendations, templates.

Profiles are built by the real pipeline minus the LLM: synthetic logs with
planted truth are written to disk and read back by ingestion (so events carry
their file and line), signals are computed, and a draft naming the planted
domains/topics is grounded by :func:`interests.profile.grounding.ground_profile`.
"""

from __future__ import annotations

import json
import re
import sys
import types
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from interests.cli import cli
from markupsafe import escape as _escape

from interests.errors import ConfigError
from interests.events import Catalog, Event, Item, UserHistory
from interests.ingest import read_logs
from interests.profile.draft import MAX_DOMAINS, MAX_ITEMS_PER_TOPIC, MAX_TOPICS, draft_model
from interests.profile.grounding import ground_profile
from interests.profile.signals import compute_signals, subset_trend
from interests.report import (
    Recommendation,
    because,
    md_escape,
    recommendations_from_model,
    render_report,
    write_report,
)
from interests.report.charts import heatmap, shade_rows, sparkline
from interests.report.recommendations import explanation, load_recommender
from interests.report.views import domain_distribution, user_view
from interests.schema import Attribute, Domain, ErrorRecord, InterestProfile, Provenance, Topic
from interests.synthetic import generate, write_logs

XSS_TITLE = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(2)>'
XSS_REVIEW = "<img src=x onerror=\"document.title='pwned'\"> great & cheap"
XSS_DOMAIN = "</summary><script>alert(3)</script>"
XSS_TOPIC = "'><svg onload=alert(4)>"
XSS_SUMMARY = "Likes <b>bold</b> things and <script>window.__pwned=1</script> more."


def escape(text: str) -> str:
    """Text as the reports' HTML escaping writes it."""
    return str(_escape(text))


def provenance(n: int) -> Provenance:
    return Provenance(
        model="smollm2-135m",
        backend="vllm",
        prompt_template="user.j2",
        prompt_hash="ab" * 32,
        created_at="2024-01-01T00:00:00Z",
        events_used=n,
        events_total=n,
        truncated=False,
    )


def grounded(
    history: UserHistory,
    catalog: Catalog,
    summary: str,
    domains: list[tuple[str, list[tuple[str, list[str]]]]],
) -> InterestProfile:
    """A profile grounded from a hand-made draft (what the LLM would write)."""
    ids = history.item_ids()
    draft = draft_model(ids).model_validate(
        {
            "summary": summary,
            "domains": [
                {"name": d, "topics": [{"name": t, "item_ids": its, "attributes": []} for t, its in ts]}
                for d, ts in domains
            ],
        }
    )
    sig = compute_signals(history, catalog)
    return ground_profile(
        draft, history, sig, catalog, allowed_items=ids, provenance=provenance(len(history.events))
    )


@dataclass
class Run:
    dir: Path
    events: Path
    catalog_path: Path
    profiles_path: Path
    errors_path: Path
    quarantine_path: Path
    profiles: list[InterestProfile]
    histories: dict[str, UserHistory]
    catalog: Catalog


def build_run(directory: Path, n_users: int = 5) -> Run:
    """An example run on disk: logs (with two bad rows), profiles, errors, quarantine."""
    data = generate(n_users=n_users, seed=0)
    paths = write_logs(data, directory / "logs")
    with paths["events"].open("a", encoding="utf-8") as f:
        f.write("u001,i0001,5,not-a-time,,rating\n,i0002,4,2023-01-01T00:00:00+00:00,,rating\n")
    quarantine_path = directory / "quarantine.jsonl"
    logs = read_logs([paths["events"]], catalog=paths["catalog"], quarantine=quarantine_path)
    assert logs.catalog is not None
    profiles = []
    for pu in data.users:
        history = logs.histories[pu.user_id]
        ids = history.item_ids()
        domains = []
        for d in pu.domains[:MAX_DOMAINS]:
            topics = [
                (t, [i for i in ids if data.item_topic[i] == t][:MAX_ITEMS_PER_TOPIC])
                for t in pu.topics[d][:MAX_TOPICS]
            ]
            domains.append((d, [(t, its) for t, its in topics if its]))
        profiles.append(grounded(history, logs.catalog, f"Enjoys {' and '.join(pu.domains)}.", domains))
    profiles_path = directory / "profiles.jsonl"
    profiles_path.write_text("".join(p.model_dump_json() + "\n" for p in profiles[:-1]), encoding="utf-8")
    errors_path = directory / "errors.jsonl"
    error = ErrorRecord(
        user_id=profiles[-1].user_id,
        stage="validate",
        reason="output did not match the schema",
        attempts=3,
        created_at="2024-01-01T00:00:00Z",
    )
    errors_path.write_text(error.model_dump_json() + "\n", encoding="utf-8")
    return Run(
        directory,
        paths["events"],
        paths["catalog"],
        profiles_path,
        errors_path,
        quarantine_path,
        profiles[:-1],
        logs.histories,
        logs.catalog,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return build_run(tmp_path_factory.mktemp("report-run"))


class _Collect(HTMLParser):
    """Elements with data-* attributes, and the text of those with data-stat."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str | None]] = []
        self.stats: dict[str, str] = {}
        self._stat: list[str | None] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if any(k.startswith("data-") for k in a):
            self.elements.append({"tag": tag, **a})
        self._stat.append(a.get("data-stat"))

    def handle_endtag(self, tag: str) -> None:
        if self._stat:
            self._stat.pop()

    def handle_data(self, data: str) -> None:
        if self._stat and self._stat[-1]:
            self.stats[self._stat[-1]] = self.stats.get(self._stat[-1], "") + data


def parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


def html_report(run: Run, user: str) -> str:
    return render_report(run.profiles_path, user=user, logs=[run.events], catalog=run.catalog_path)


# -- per-user HTML: every node, every evidence item, numbers ------------------------------------------


def test_user_report_has_every_node_and_evidence_item(run: Run) -> None:
    profile = run.profiles[0]
    html = html_report(run, profile.user_id)
    doc = parse(html)
    nodes = [(e["data-node"], e["data-name"]) for e in doc.elements if e.get("data-node")]
    expected = [("domain", d.name) for d in profile.domains]
    assert [n for n in nodes if n[0] == "domain"] == expected
    assert [n[1] for n in nodes if n[0] == "topic"] == [t.name for d in profile.domains for t in d.topics]
    cited = {e["data-item"] for e in doc.elements if e.get("data-item") and e["tag"] == "tr"}
    assert cited == profile.item_ids()
    history = run.histories[profile.user_id]
    for item_id in profile.item_ids():
        assert escape(run.catalog[item_id].title) in html
        for ev in (e for e in history.events if e.item_id == item_id):
            assert f"<td>events.csv:{ev.line}\n" in html  # the log row, as text
            if ev.text:
                assert escape(ev.text) in html


def test_user_report_numbers_match_the_profile(run: Run) -> None:
    profile = run.profiles[1]
    html = html_report(run, profile.user_id)
    stats = parse(html).stats
    assert stats["n_events"] == str(profile.stats.n_events)
    assert stats["n_items"] == str(profile.stats.n_items)
    assert stats["n_rated"] == str(profile.stats.n_rated)
    assert stats["evidence_coverage"] == f"{profile.stats.evidence_coverage:.1%}"
    assert stats["sentiment"].startswith(f"{profile.sentiment.rating:+.2f}")
    assert stats["events_used"] == f"{profile.provenance.events_used} of {profile.provenance.events_total}"
    assert stats["n_sessions"] == str(profile.time_patterns.n_sessions)
    for d in profile.domains:
        assert f'data-weight="{d.weight}">{d.weight:.1%}<' in html
        if d.sentiment.rating is not None:
            assert f"{d.sentiment.rating:+.2f} ({d.sentiment.n_ratings} rating" in html
        for t in d.topics:
            assert f'data-weight="{t.weight}">{t.weight:.1%}<' in html
    for a in (a for d in profile.domains for t in d.topics for a in t.attributes):
        assert f"<td>{escape(a.name)}</td><td>{escape(a.value)}</td>" in html
    assert profile.provenance.prompt_hash[:16] in html and profile.provenance.model in html


def test_user_report_charts_and_trends(run: Run) -> None:
    profile = next(p for p in run.profiles if any(t.trend != "steady" for t in p.time_patterns.by_domain))
    html = html_report(run, profile.user_id)
    assert 'data-chart="heatmap"' in html and 'data-chart="activity"' in html
    grid = re.search(r'<g class="cells"[^>]*>(.*?)</g>', html)
    assert grid is not None
    cells = re.findall(r'<path d="M[^"]*" fill-opacity="[.\d]+" data-value="([0-9.]+)">', grid.group(1))
    assert 0 < len(cells) <= 7 * 24  # the cells with events
    assert sum(float(c) for c in cells) == sum(1 for e in run.histories[profile.user_id].events if e.ts)
    for t in profile.time_patterns.by_domain:
        assert f'data-series="{escape(t.domain)}" data-trend="{t.trend}"' in html


def test_without_logs_the_report_still_renders_from_the_profile(run: Run) -> None:
    profile = run.profiles[0]
    html = render_report([profile])
    assert 'data-chart="heatmap"' in html and "estimated from the profile" in html
    assert 'data-chart="timeline"' in html  # activity from by_domain first/last seen
    for item_id in profile.item_ids():
        assert f'data-item="{item_id}"' in html  # evidence ids even without a catalogue


def test_report_is_self_contained(run: Run) -> None:
    html = html_report(run, run.profiles[0].user_id)
    assert "Content-Security-Policy" in html and "default-src 'none'" in unescape(html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # no network resources
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count("<script>") == 1 and html.count("<style>") == 1


def test_csp_hashes_match_the_shipped_style_and_script(run: Run) -> None:
    import base64
    import hashlib

    html = render_report([run.profiles[0]])
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', html)
    assert csp
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        assert body
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in unescape(csp.group(1))


# -- run index --------------------------------------------------------------------------------------


def test_index_lists_users_domains_errors_quarantine_and_stats(run: Run) -> None:
    html = render_report(
        run.profiles_path,
        all_users=True,
        logs=[run.events],
        catalog=run.catalog_path,
        errors=run.errors_path,
        quarantine=run.quarantine_path,
    )
    doc = parse(html)
    rows = [e["data-user"] for e in doc.elements if e["tag"] == "tr" and e.get("data-user")]
    assert rows == [p.user_id for p in run.profiles]
    sections = [e["data-user"] for e in doc.elements if e["tag"] == "section" and e.get("data-user")]
    assert sections == rows
    distribution = domain_distribution(run.profiles)
    assert sum(r.users for r in distribution) == sum(len(p.domains) for p in run.profiles)
    for r in distribution:
        assert f'data-label="{escape(r.label)}" data-value="{r.users}"' in html
    assert 'data-error="u005"' in html and "output did not match the schema" in html
    quarantined = [json.loads(line) for line in run.quarantine_path.read_text().splitlines()]
    assert len(quarantined) == 2
    for q in quarantined:
        assert escape(q["reason"]) in html
    assert doc.stats["profiles"] == str(len(run.profiles))
    assert doc.stats["error records"] == "1"
    assert doc.stats["users"] == str(len(run.profiles) + 1)
    assert doc.stats["quarantined rows"] == "2"
    assert doc.stats["events used"] == str(sum(p.provenance.events_used for p in run.profiles))


def test_index_uses_the_taxonomy_when_given(run: Run) -> None:
    from interests.taxonomy.model import GlobalDomain, GlobalTopic

    taxonomy = types.SimpleNamespace(
        domains=[
            GlobalDomain(
                id="d00", label="Films", size=12, n_users=2, topics=[GlobalTopic("d00.t00", "Cyberpunk")]
            ),
            GlobalDomain(id="d01", label="Coffee <b>", size=30, n_users=3, topics=[]),
        ]
    )
    html = render_report(run.profiles, all_users=True, taxonomy=taxonomy)
    assert (
        'data-label="Coffee &lt;b&gt;" data-value="3"' in html
        and "Global domains of the shared taxonomy" in html
    )
    assert html.index('data-label="Coffee') < html.index('data-label="Films"')
    assert '<td>Films</td><td class="num">2</td><td class="num">12</td><td>Cyberpunk</td>' in html
    md = render_report(run.profiles, all_users=True, taxonomy=taxonomy, format="md")
    assert "| Films | 2 | 12 | Cyberpunk |" in md


def test_filter_controls_are_hidden_without_script(run: Run) -> None:
    html = render_report(run.profiles, all_users=True)
    assert '<div class="filters" id="filters" hidden>' in html
    assert '<div class="tools" hidden>' in html


# -- Markdown ---------------------------------------------------------------------------------------


def test_markdown_user_report(run: Run) -> None:
    profile = run.profiles[0]
    md = render_report(
        run.profiles_path,
        user=profile.user_id,
        logs=[run.events],
        catalog=run.catalog_path,
        format="md",
    )
    assert md.startswith(f"# Interest profile of {profile.user_id}\n")
    for d in profile.domains:
        assert f"- **{md_escape(d.name)}** {d.weight:.1%}" in md
        for t in d.topics:
            assert f"  - **{md_escape(t.name)}** {t.weight:.1%}" in md
            for i in t.item_ids:
                assert f"{md_escape(run.catalog[i].title)} ({md_escape(i)})" in md
    line = next(e.line for e in run.histories[profile.user_id].events if e.item_id in profile.item_ids())
    assert f" · events.csv:{line}\n" in md
    assert f"[events.csv]({Path(run.events).resolve().as_uri()})" in md  # the file, linked once
    assert "Mon |" in md and "Sun |" in md
    assert "<" not in md.replace("&lt;", "")  # no raw HTML at all


def test_markdown_index(run: Run) -> None:
    md = render_report(
        run.profiles_path, all_users=True, errors=run.errors_path, quarantine=run.quarantine_path, format="md"
    )
    for p in run.profiles:
        assert f"\n| {md_escape(p.user_id)} | " in md
        assert f"## User {md_escape(p.user_id)}\n" in md
    assert "| u005 | validate | output did not match the schema | 3 |" in md
    assert "| profiles | 4 |" in md


def test_md_escape() -> None:
    assert (
        md_escape("a|b *c* _d_ [e](f) `g` <h> & #i") == r"a\|b \*c\* \_d\_ \[e\](f) \`g\` &lt;h&gt; &amp; \#i"
    )
    assert md_escape("two\nlines") == "two lines"
    assert md_escape(3) == 3


# -- escaping of everything that comes from the data ------------------------------------------------


def hostile_profile() -> tuple[InterestProfile, UserHistory, Catalog]:
    catalog = Catalog(
        {
            "i1": Item("i1", XSS_TITLE, ["<b>cat</b>"], attributes={"brand": XSS_ATTR}),
            "i2": Item("i2", XSS_ATTR, ["films"]),
            "i3": Item("i3", "Plain title", ["films"]),
        }
    )
    t0 = 1_700_000_000.0
    history = UserHistory(
        "u<x>",
        [
            Event("u<x>", "i1", t0, 5.0, XSS_REVIEW, "review", source="logs/<evil>.csv", line=2),
            Event(
                "u<x>",
                "i2",
                t0 + 86400,
                1.0,
                "javascript:alert(5)",
                "review",
                source="javascript:alert(6)",
                line=3,
            ),
            Event("u<x>", "i3", t0 + 2 * 86400, 4.0, None, "rating", source="logs/ok.csv", line=4),
            Event("u<x>", "i3", t0 + 40 * 86400, 3.0, None, "rating", source="logs/ok.csv", line=5),
        ],
    )
    # Built directly: the drafts the LLM writes refuse such names, but a profile file can still hold them.
    sig = compute_signals(history, catalog)
    topics = [
        Topic(
            name=XSS_TOPIC,
            weight=0.6667,
            item_ids=["i1", "i2"],
            attributes=[Attribute(name=XSS_TITLE, value=XSS_ATTR)],
        ),
        Topic(name=XSS_TITLE, weight=0.3333, item_ids=["i3"]),
    ]
    trend = subset_trend(XSS_DOMAIN, history.events, [True] * len(history.events))
    profile = InterestProfile(
        user_id=history.user_id,
        summary=XSS_SUMMARY,
        domains=[Domain(name=XSS_DOMAIN, weight=1.0, topics=topics)],
        sentiment=sig.sentiment,
        time_patterns=sig.time_patterns.model_copy(update={"by_domain": [trend]}),
        stats=sig.stats,
        provenance=provenance(len(history.events)),
    )
    return profile, history, catalog


def test_hostile_text_is_escaped_in_html() -> None:
    profile, history, catalog = hostile_profile()
    recs = {
        profile.user_id: [
            {
                "item_id": "i9",
                "title": XSS_TITLE,
                "score": 0.5,
                "reasons": [XSS_REVIEW],
                "nodes": [XSS_DOMAIN],
            }
        ]
    }
    html = render_report([profile], logs={profile.user_id: history}, catalog=catalog, recommendations=recs)
    assert html.count("<script") == 1  # the report's own
    assert "<img" not in html and "<svg onload" not in html and "<b>" not in html
    assert "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")
    for text in (XSS_TITLE, XSS_ATTR, XSS_DOMAIN, XSS_TOPIC, XSS_SUMMARY):
        assert escape(text) in html
    hrefs = re.findall(r'href="([^"]*)"', html)  # the three log files, each linked once, absolute
    assert len(hrefs) == 3 and all(h.startswith("file:///") for h in hrefs), hrefs


def test_hostile_text_is_escaped_in_markdown() -> None:
    profile, history, catalog = hostile_profile()
    md = render_report([profile], logs={profile.user_id: history}, catalog=catalog, format="md")
    assert "<" not in md and "](javascript:" not in md


def test_hostile_errors_and_quarantine_are_escaped(run: Run) -> None:
    err = ErrorRecord(user_id=XSS_ATTR, stage="ground", reason=XSS_TITLE, created_at="2024-01-01T00:00:00Z")
    from interests.schema import QuarantinedRow

    row = QuarantinedRow(file=XSS_TOPIC, line=3, reason="bad rating", raw=XSS_REVIEW)
    html = render_report(run.profiles, all_users=True, errors=[err], quarantine=[row])
    assert html.count("<script") == 1 and "<img" not in html
    assert escape(XSS_TITLE) in html and escape(XSS_REVIEW) in html


# -- charts -----------------------------------------------------------------------------------------


def test_charts() -> None:
    grid = [[0.0] * 24 for _ in range(7)]
    grid[0][20] = 4.0
    svg = heatmap(grid, title="a <title>")
    assert "a &lt;title&gt;" in svg and "style=" not in svg
    cells = re.findall(
        r'<path d="M(\d+) (\d+)h[^"]*" fill-opacity="[.\d]+" data-value="([.\d]+)"><title>([^<]*)<', svg
    )
    assert cells == [("476", "18", "4", "Mon 20:00 \u2013 4 events")]  # only cells with a value are drawn
    assert sparkline([0, 1, 2, 4]) == "\u2581\u2583\u2585\u2588" and sparkline([0, 0]) == "\u2581\u2581"
    assert shade_rows(grid)[0] == "Mon |" + " " * 20 + "\u2588" + " " * 3 + "|"


# -- recommendations ------------------------------------------------------------------------------


class TinyModel:
    """Shaped like the two-tower model: recommend(user_ids, k) and explain(user_id, item_id)."""

    def __init__(self, explain: dict[str, Any]) -> None:
        self._explain = explain
        self.calls: list[tuple[list[str], int]] = []

    def recommend(self, user_ids: list[str], k: int) -> tuple[list[list[str]], list[list[float]]]:
        self.calls.append((user_ids, k))
        return [["i0003", "i0004"][:k] for _ in user_ids], [[0.9, 0.7][:k] for _ in user_ids]

    def explain(self, user_id: str, item_id: str) -> Any:
        return self._explain[item_id]


def test_recommendations_from_model_with_reasons(run: Run) -> None:
    profile = run.profiles[0]
    history = run.histories[profile.user_id]
    topic = profile.domains[0].topics[0]
    model = TinyModel(
        {
            "i0003": {"nodes": [profile.domains[0].name, topic.name], "items": topic.item_ids[:2]},
            "i0004": "popular with people like you",
        }
    )
    recs = recommendations_from_model(
        model, [profile.user_id], k=2, catalog=run.catalog, histories=run.histories
    )
    assert model.calls == [([profile.user_id], 2)]
    first, second = recs[profile.user_id]
    assert (first.item_id, first.score, first.title) == ("i0003", 0.9, run.catalog["i0003"].title)
    rated = {e.item_id: e.rating for e in history.events if e.rating is not None}
    title0 = run.catalog[topic.item_ids[0]].title
    assert first.reasons[0].startswith(
        f"because you like {topic.name}: you rated {title0} ({rated[topic.item_ids[0]]:g})"
    )
    assert first.nodes == [profile.domains[0].name, topic.name]
    assert second.reasons == ["popular with people like you"]
    html = render_report(
        run.profiles_path, user=profile.user_id, model=model, k=2, catalog=run.catalog_path, logs=[run.events]
    )
    assert 'data-role="recommendations"' in html and escape(first.reasons[0]) in html
    md = render_report(run.profiles_path, user=profile.user_id, recommendations=recs, format="md")
    assert "## User" in md and "### Recommendations" in md and "popular with people like you" in md


def test_recommendations_as_plain_data(run: Run) -> None:
    recs = {
        run.profiles[0].user_id: [
            {"item_id": "i0100", "title": "A pick", "score": 1, "reasons": "because", "nodes": ["Baking"]}
        ]
    }
    html = render_report([run.profiles[0]], recommendations=recs)
    assert 'data-item="i0100"' in html and "A pick" in html and "Baking" in html
    assert Recommendation.coerce(recs[run.profiles[0].user_id][0]).reasons == ["because"]


def test_explanation_shapes() -> None:
    assert explanation(None) == ([], [])
    assert explanation(["a", "b"]) == (["a", "b"], [])
    assert explanation({"reasons": ["r"], "nodes": ["n"]}) == (["r"], ["n"])
    assert explanation(types.SimpleNamespace(topic="Jazz", items=[])) == (["because you like Jazz"], ["Jazz"])
    assert because("Jazz", ["x", "y", "z", "w"]) == "because you like Jazz: you chose x, y, z and 1 more"


def test_load_recommender_is_guarded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "interests.recsys", types.ModuleType("interests.recsys"))
    with pytest.raises(ConfigError, match="no model loader"):
        load_recommender(tmp_path)
    module = types.ModuleType("interests.recsys")
    module.load_model = lambda path: ("loaded", path)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "interests.recsys", module)
    assert load_recommender(tmp_path) == ("loaded", tmp_path)


# -- SDK, CLI, templates ----------------------------------------------------------------------------


def test_write_report_picks_format_from_suffix(run: Run, tmp_path: Path) -> None:
    html = write_report(tmp_path / "r.html", run.profiles, user=run.profiles[0].user_id)
    md = write_report(tmp_path / "r.md", run.profiles, user=run.profiles[0].user_id)
    assert html.read_text().startswith("<!DOCTYPE html>") and md.read_text().startswith("# ")
    with pytest.raises(ConfigError, match=r"name it \.html or \.md"):
        write_report(tmp_path / "r.txt", run.profiles)


def test_selection_errors(run: Run) -> None:
    with pytest.raises(ConfigError, match="--user USER_ID for one, or --all"):
        render_report(run.profiles)
    with pytest.raises(ConfigError, match="has no profile: validate failed: output did not match"):
        render_report(run.profiles, user="u005", errors=run.errors_path)
    with pytest.raises(ConfigError, match="no profile in the file"):
        render_report(run.profiles, user="nobody")


def test_cli_report(run: Run, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "u.html"
    args = [
        "report",
        str(run.profiles_path),
        "--user",
        "u001",
        "--logs",
        str(run.events),
        "--catalog",
        str(run.catalog_path),
        "-o",
        str(out),
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and 'data-node="domain"' in out.read_text()
    out_md = tmp_path / "all.md"
    result = runner.invoke(
        cli,
        [
            "report",
            str(run.profiles_path),
            "--all",
            "--errors",
            str(run.errors_path),
            "--quarantine",
            str(run.quarantine_path),
            "-o",
            str(out_md),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "## Extraction statistics" in out_md.read_text()
    result = runner.invoke(cli, ["report", str(run.profiles_path), "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "Error: the profiles file holds 4 profiles" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        cli, ["report", str(run.profiles_path), "--all", "--format", "md", "-o", str(tmp_path / "x.txt")]
    )
    assert result.exit_code == 0 and (tmp_path / "x.txt").read_text().startswith("# Interest profiles")


def test_template_dir_overrides_one_template(run: Run, tmp_path: Path) -> None:
    (tmp_path / "user.md.j2").write_text("custom {{ users[0].user_id }} {{ users[0].summary }}\n")
    md = render_report([run.profiles[0]], format="md", template_dir=tmp_path)
    assert md == f"custom {run.profiles[0].user_id} {md_escape(run.profiles[0].summary)}\n"
    html = render_report([run.profiles[0]], template_dir=tmp_path)  # other templates still built in
    assert "<!DOCTYPE html>" in html


def test_templates_are_sandboxed(run: Run, tmp_path: Path) -> None:
    from jinja2.exceptions import SecurityError

    (tmp_path / "user.md.j2").write_text("{{ users.__class__.__mro__ }}\n")
    with pytest.raises(SecurityError):
        render_report([run.profiles[0]], format="md", template_dir=tmp_path)


def test_user_view_flags_items_missing_from_logs(run: Run) -> None:
    profile = run.profiles[0]
    view = user_view(profile, history=UserHistory(profile.user_id, []), catalog=run.catalog)
    assert sorted(view.not_in_logs) == sorted(profile.item_ids())


@pytest.mark.engine
def test_report_over_engine_profiles(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Reports over the profiles the real vLLM engine wrote for the example users."""
    try:
        engine_profiles = request.getfixturevalue("engine_profiles")
        logs_dir = request.getfixturevalue("example_logs_dir")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py does not provide engine_profiles/example_logs_dir yet")
    path = Path(engine_profiles) if isinstance(engine_profiles, (str, Path)) else None
    from interests.report.inputs import load_profiles

    profiles = load_profiles(path if path is not None else engine_profiles)
    assert profiles
    out = write_report(
        tmp_path / "index.html",
        profiles,
        all_users=True,
        logs=[Path(logs_dir) / "events.csv"],
        catalog=Path(logs_dir) / "catalog.jsonl",
    )
    html = out.read_text()
    for p in profiles:
        assert f'data-user="{escape(p.user_id)}"' in html
        for d in p.domains:
            assert f'data-name="{escape(d.name)}"' in html
        for i in p.item_ids():
            assert f'data-item="{escape(i)}"' in html
    md = write_report(tmp_path / "index.md", profiles, all_users=True).read_text()
    assert all(f"## User {md_escape(p.user_id)}" in md for p in profiles)


def test_index_limits_full_sections(run: Run) -> None:
    html = render_report(run.profiles, all_users=True, max_sections=2)
    doc = parse(html)
    rows = [e["data-user"] for e in doc.elements if e["tag"] == "tr" and e.get("data-user")]
    sections = [e["data-user"] for e in doc.elements if e["tag"] == "section" and e.get("data-user")]
    assert rows == [p.user_id for p in run.profiles] and sections == rows[:2]
    assert "The first 2 of 4 users are shown in full" in html
    assert f'<a href="#user-{run.profiles[2].user_id}">' not in html
    md = render_report(run.profiles, all_users=True, max_sections=0, format="md")
    assert "\n## User " not in md and "The first 0 of 4 users" in md


def test_browser_launch_is_tried_again_when_chromium_does_not_answer(tmp_path: Path) -> None:
    """A cold Chromium once answered nothing for 30 s (5 browser tests errored); a second launch helps."""
    from browser import Browser, BrowserError

    launches = tmp_path / "launches"
    fake = tmp_path / "mute-chromium"
    fake.write_text(f"#!/bin/sh\necho launch >> {launches}\nexec sleep 30\n")
    fake.chmod(0o755)
    b = Browser(str(fake), timeout=0.5)
    with pytest.raises(BrowserError, match="no answer"):
        b.start()
    assert launches.read_text().count("launch") == Browser.LAUNCH_TRIES == 2
    assert b._proc is None  # both mute processes were stopped


def test_cli_report_reads_log_folders_and_writes_to_stdout(run: Run, tmp_path: Path) -> None:
    """`report --logs DIR` (as the README shows) and `-o -` (was a file named "-")."""
    runner = CliRunner()
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "events.csv").write_bytes(Path(run.events).read_bytes())
    args = ["report", str(run.profiles_path), "--user", "u001", "--logs", str(folder)]
    args += ["--catalog", str(run.catalog_path), "--format", "md", "-o", "-"]
    with_dir = runner.invoke(cli, args)
    assert with_dir.exit_code == 0, with_dir.output
    assert with_dir.stdout.startswith("#") and "u001" in with_dir.stdout
    assert not Path("-").exists()
    with_file = runner.invoke(cli, [*args[:5], str(run.events), *args[6:]])

    def body(text: str) -> list[str]:  # without the "generated at" line and the files' paths
        return [re.sub(r"\(file://[^)]*\)", "", s) for s in text.splitlines() if "by interests" not in s]

    assert body(with_file.stdout) == body(with_dir.stdout)  # the folder gave the same evidence as the file
    no_format = runner.invoke(cli, ["report", str(run.profiles_path), "--all", "-o", "-"])
    assert no_format.exit_code == 2 and "--format" in no_format.output


def test_report_reasons_come_from_the_two_tower_explanation(run: Run) -> None:
    """Was `because you like ('topic d05.t02', np.float64(0.0027))`, or no reason without a taxonomy."""
    from interests.recsys import TwoTower

    model = TwoTower(epochs=5, batch_size=64, dim=16, seed=0).fit(
        run.histories, catalog=run.catalog, profiles=run.profiles
    )
    user = run.profiles[0].user_id
    recs = recommendations_from_model(model, [user], k=3, catalog=run.catalog, histories=run.histories)[user]
    assert len(recs) == 3
    titles = {run.catalog.get_item(i).title for i in run.catalog}
    for rec in recs:
        assert rec.reasons and rec.reasons[0].startswith("because")
        assert "np.float64" not in rec.reasons[0] and "(" not in rec.reasons[0].split(":")[0]
        assert any(t in rec.reasons[0] for t in titles if t)  # names the user's own items by title
