"""Reports opened from disk in a real headless Chromium (Debian's ``chromium`` package).

One browser for the module, driven over the DevTools protocol on a pipe
(`tests/browser.py`): console errors and Content-Security-Policy
violations, network requests and JavaScript dialogs are recorded for every
page. Screenshots go to ``$INTERESTS_SCREENSHOT_DIR`` when set (``make
screenshots``-style: ``INTERESTS_SCREENSHOT_DIR=docs/img``), else to the
test's temporary folder.

Skipped only when no Chromium is installed and ``CI`` is unset; under CI a
missing browser fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser, find_chromium

from interests.report import render_report, write_report

try:  # tests/ is a rootdir-relative folder (no __init__.py) or a package
    from test_report import (  # type: ignore[import-not-found]
        XSS_DOMAIN,
        XSS_REVIEW,
        XSS_SUMMARY,
        XSS_TITLE,
        XSS_TOPIC,
        Run,
        build_run,
        hostile_profile,
    )
except ImportError:
    from tests.test_report import (
        XSS_DOMAIN,
        XSS_REVIEW,
        XSS_SUMMARY,
        XSS_TITLE,
        XSS_TOPIC,
        Run,
        build_run,
        hostile_profile,
    )

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no chromium binary is installed: apt-get install -y chromium")
        pytest.skip("no chromium binary (apt-get install -y chromium); browser tests run under CI")
    with Browser(width=1280, height=1000, timeout=30.0) as b:
        yield b


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return build_run(tmp_path_factory.mktemp("report-browser"))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("INTERESTS_SCREENSHOT_DIR")
    return Path(where) if where else tmp_path_factory.mktemp("screenshots")


def assert_clean(page: object) -> None:
    assert page.errors == [], page.errors  # type: ignore[attr-defined]
    assert page.foreign_requests == [], page.foreign_requests  # type: ignore[attr-defined]
    assert page.dialogs == []  # type: ignore[attr-defined]


def visible(b: Browser, selector: str) -> int:
    """How many elements match ``selector`` and are rendered with a size."""
    return int(
        b.evaluate(
            f"Array.from(document.querySelectorAll({selector!r})).filter(e => e.checkVisibility() && "
            "e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0).length"
        )
    )


def test_user_report_in_browser(browser: Browser, run: Run, shots: Path) -> None:
    profile = next(p for p in run.profiles if any(t.trend != "steady" for t in p.time_patterns.by_domain))
    out = write_report(
        run.dir / "user.html",
        run.profiles_path,
        user=profile.user_id,
        logs=[run.events],
        catalog=run.catalog_path,
    )
    page = browser.open(out)
    assert_clean(page)
    assert browser.evaluate("document.title") == f"Interest profile of {profile.user_id}"
    assert visible(browser, "details.domain") == len(profile.domains)
    names = browser.evaluate(
        "Array.from(document.querySelectorAll('details.topic')).map(d => d.dataset.name)"
    )
    assert names == [t.name for d in profile.domains for t in d.topics]
    rows = browser.evaluate(
        "Array.from(new Set(Array.from(document.querySelectorAll('tr[data-item]')).map(r => r.dataset.item)))"
    )
    assert set(rows) == profile.item_ids()
    assert visible(browser, "svg[data-chart=heatmap]") == 1
    assert visible(browser, "svg[data-chart=activity]") == 1
    busy = {(e.ts // 3600) for e in run.histories[profile.user_id].events if e.ts is not None}
    assert 0 < visible(browser, "svg[data-chart=heatmap] g.cells path") <= min(len(busy), 7 * 24)
    assert visible(browser, "svg[data-chart=activity] polyline.series") >= len(profile.domains)
    assert visible(browser, ".tools") == 1  # the shipped script ran (it unhides the tools)
    browser.screenshot(shots / "report-user.png", full_page=True, max_height=2200)
    browser.screenshot(shots / "report-time-patterns.png", selector="figure[data-role=heatmap]")
    browser.screenshot(shots / "report-activity.png", selector="figure[data-role=activity]")
    assert (shots / "report-user.png").stat().st_size > 10_000


def test_index_filter_and_print(browser: Browser, run: Run, shots: Path) -> None:
    out = write_report(
        run.dir / "index.html",
        run.profiles_path,
        all_users=True,
        logs=[run.events],
        catalog=run.catalog_path,
        errors=run.errors_path,
        quarantine=run.quarantine_path,
    )
    page = browser.open(out)
    assert_clean(page)
    n = len(run.profiles)
    assert visible(browser, "#filters") == 1
    assert browser.evaluate("document.getElementById('filter-count').textContent") == f"{n} of {n} users"
    assert visible(browser, "svg[data-chart=domains]") == 1
    assert visible(browser, "tr[data-error]") == 1
    browser.screenshot(shots / "report-index.png", full_page=True, max_height=1600)

    target = run.profiles[0].domains[0].name
    browser.evaluate(
        "(() => { const s = document.getElementById('filter-domain');"
        f" s.value = {target.lower()!r}; s.dispatchEvent(new Event('change')); }})()"
    )
    expected = [p.user_id for p in run.profiles if target in {d.name for d in p.domains}]
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('tr[data-user]')).filter(r => !r.hidden)"
        ".map(r => r.dataset.user)"
    )
    assert shown == expected and len(expected) < n
    assert visible(browser, "section.user") == len(expected)
    browser.evaluate(
        "(() => { const s = document.getElementById('filter-domain'); s.value = '';"
        " s.dispatchEvent(new Event('change'));"
        f" const t = document.getElementById('filter-text'); t.value = {run.profiles[1].user_id!r};"
        " t.dispatchEvent(new Event('input')); })()"
    )
    assert browser.evaluate("document.getElementById('filter-count').textContent") == f"1 of {n} users"

    browser.open(out)
    closed = "details.topic:not([open]) table.evidence"
    n_closed = int(browser.evaluate(f"document.querySelectorAll({closed!r}).length"))
    assert n_closed > 0 and visible(browser, closed) == 0
    browser.media("print")
    try:
        assert visible(browser, closed) == n_closed  # print CSS expands everything
        assert visible(browser, "#filters") == 0
    finally:
        browser.media("")


def test_page_works_without_javascript(browser: Browser, run: Run) -> None:
    out = write_report(run.dir / "nojs.html", run.profiles_path, all_users=True)
    browser.scripts_enabled(False)
    try:
        page = browser.open(out)
        assert_clean(page)
        assert visible(browser, "tr[data-user]") == len(run.profiles)
        assert visible(browser, "section.user") == len(run.profiles)
        assert visible(browser, "#filters") == 0  # controls that need the script stay hidden
        assert visible(browser, "details.domain") == sum(len(p.domains) for p in run.profiles)
    finally:
        browser.scripts_enabled(True)


def test_injection_renders_as_text_and_runs_nothing(browser: Browser, run: Run, shots: Path) -> None:
    profile, history, catalog = hostile_profile()
    recs = {profile.user_id: [{"item_id": "i9", "title": XSS_TITLE, "score": 1.0, "reasons": [XSS_REVIEW]}]}
    out = run.dir / "hostile.html"
    out.write_text(
        render_report(
            [profile],
            logs={profile.user_id: history},
            catalog=catalog,
            recommendations=recs,
        ),
        encoding="utf-8",
    )
    page = browser.open(out)
    assert_clean(page)
    assert browser.evaluate("document.title") == f"Interest profile of {profile.user_id}"
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.scripts.length") == 1
    assert browser.evaluate("document.querySelectorAll('img, iframe, object, embed, b').length") == 0
    assert browser.evaluate("document.querySelectorAll('[onload], [onerror]').length") == 0
    text = browser.evaluate("document.body.innerText")
    for payload in (XSS_TITLE, XSS_DOMAIN, XSS_TOPIC, XSS_SUMMARY, XSS_REVIEW):
        assert payload in text, payload
    browser.screenshot(shots / "report-injection.png", selector="div.hierarchy")


def test_csp_blocks_scripts_the_report_does_not_ship(browser: Browser, run: Run, tmp_path: Path) -> None:
    (tmp_path / "user.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block content %}<p id="x">{{ users[0].user_id }}</p>'
        "<script>document.title = 'evil'</script>{% endblock %}"
    )
    out = write_report(run.dir / "custom.html", [run.profiles[0]], template_dir=tmp_path)
    page = browser.open(out)
    assert browser.evaluate("document.title") != "evil"
    assert any("Content Security Policy" in e for e in page.errors), page.errors
    assert page.foreign_requests == []
