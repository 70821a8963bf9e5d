"""Report items of #26: a size budget, links that survive moving the report, filters by level.

Profiles of the example logs come from the real extraction with the scripted
backend (the names are computed from the catalogue, as in
tests/test_category_levels.py): the non-engine route to a profile of every
example user.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from interests.ingest import read_logs
from interests.llm.fake import FakeBackend
from interests.profile.extract import extract_profiles
from interests.profile.store import read_profiles
from interests.report import write_report
from interests.report.views import domain_key

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "logs"
BUDGET = 25_000  # bytes of HTML a user, charts included, at default settings


@pytest.fixture(scope="module")
def example_profiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example-run") / "profiles.jsonl"
    logs = read_logs(EXAMPLES / "events.csv", catalog=EXAMPLES / "catalog.jsonl")
    extract_profiles(logs, output=out, backend=FakeBackend())
    return out


def _index(profiles: Path, out: Path) -> Path:
    return write_report(
        out, profiles, all_users=True, logs=[EXAMPLES / "events.csv"], catalog=EXAMPLES / "catalog.jsonl"
    )


def test_index_of_the_example_users_stays_within_the_size_budget(
    example_profiles: Path, tmp_path: Path
) -> None:
    """Was 70,230 bytes a user (1.69 MB for 24): a heat map cell by cell, a relative link a log row."""
    page = _index(example_profiles, tmp_path / "report.html")
    n = len(read_profiles(example_profiles))
    html = page.read_text(encoding="utf-8")
    assert n == 24 and html.count('<section class="user"') == n  # every user in full, charts included
    assert html.count('data-chart="heatmap"') == n and html.count('data-chart="activity"') == n
    assert page.stat().st_size / n <= BUDGET, f"{page.stat().st_size / n:.0f} bytes a user"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("href", "src") and v]


def test_links_resolve_after_the_report_is_moved(example_profiles: Path, tmp_path: Path) -> None:
    page = _index(example_profiles, tmp_path / "written" / "report.html")
    moved = tmp_path / "elsewhere" / "deeper" / "report.html"
    moved.parent.mkdir(parents=True)
    shutil.move(page, moved)
    shutil.rmtree(tmp_path / "written")
    html = moved.read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(html)
    assert parser.links, "the page links its log files"
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    files = 0
    for link in parser.links:
        url = urlparse(link)
        if not url.scheme:  # only in-page anchors may be relative
            assert link.startswith("#") and link[1:] in ids, link
            continue
        assert url.scheme == "file", link
        assert Path(unquote(url.path)).is_file(), link
        files += 1
    assert files == 1  # events.csv, linked once, not once a row
    assert "events.csv:2<" in html or "events.csv:2\n" in html  # the rows name their file and line as text


def _options(html: str, select: str) -> list[tuple[str, str]]:
    block = re.search(rf'<select id="{select}">(.*?)</select>', html, re.S)
    assert block is not None, select
    return [(k, v) for k, v in re.findall(r'<option value="([^"]*)">([^<]*)</option>', block.group(1)) if k]


def test_domain_filter_lists_l1_domains_and_topic_filter_l2_topics(
    example_profiles: Path, tmp_path: Path
) -> None:
    html = _index(example_profiles, tmp_path / "report.html").read_text(encoding="utf-8")
    profiles = read_profiles(example_profiles)
    domains = {domain_key(d.name) for p in profiles for d in p.domains}
    topics = {domain_key(t.name) for p in profiles for d in p.domains for t in d.topics}
    assert topics - domains, "the example profiles have topic names that are no domain name"
    assert {k for k, _ in _options(html, "filter-domain")} == domains
    assert {k for k, _ in _options(html, "filter-topic")} == topics
    for p in profiles:  # each row carries its own L1 and L2 keys, which the two filters match
        row = re.search(
            rf'<tr data-user="{p.user_id}"[^>]*data-domains="([^"]*)" data-topics="([^"]*)">', html
        )
        assert row is not None, p.user_id
        assert set(row.group(1).strip("|").split("|")) == {domain_key(d.name) for d in p.domains}
        assert set(row.group(2).strip("|").split("|")) == {
            domain_key(t.name) for d in p.domains for t in d.topics
        }
