"""``interests context``: a profile as LLM context within a token budget, counted by the real tokenizer.

The profiles are the example logs' users made without a model (``update
--no-llm``: computed names and summary, every statistic exact); the tokenizer
is the embedded model's, as shipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from interests.cli import cli

import interests
from interests.errors import ConfigError
from interests.llm.tokens import TextTokens
from interests.profile.context import ContextBudgetError, render_context
from interests.profile.store import read_profiles
from interests.profile.update import update_profiles
from interests.schema import InterestProfile

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (64, 128, 256, 512)
FORMATS = ("text", "markdown", "json")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[InterestProfile]]:
    logs = interests.read_logs(
        ROOT / "examples/logs/events.csv", catalog=ROOT / "examples/logs/catalog.jsonl"
    )
    out = tmp_path_factory.mktemp("context") / "profiles.jsonl"
    update_profiles(logs, profiles=out, llm=False)
    return out, read_profiles(out)


@pytest.fixture(scope="module")
def count() -> TextTokens:
    return TextTokens()


def _lines(text: str, fmt: str) -> list[str]:
    """The entries of a context, without its header (whose 'lines left out' note changes with the cut)."""
    if fmt == "json":
        doc = json.loads(text)
        out = []
        for d in doc["domains"]:
            out.append(json.dumps({k: v for k, v in d.items() if k != "topics"}))
            out += [json.dumps(t) for t in d.get("topics", [])]
        out += [json.dumps(doc[k]) for k in ("summary", "activity") if k in doc]
        return out
    return text.splitlines()[1:]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_budget_fits_whole_lines_and_keeps_the_top_domain(
    made: tuple[Path, list[InterestProfile]], count: TextTokens, fmt: str
) -> None:
    _, profiles = made
    assert len(profiles) == 24
    cut_somewhere = 0
    for p in profiles:
        full = render_context(p, 100_000, format=fmt, tokenizer=count)
        assert full.dropped == 0
        whole = _lines(full.text, fmt)
        top = max(p.domains, key=lambda d: d.weight).name
        kept_before = None
        for budget in BUDGETS:
            r = render_context(p, budget, format=fmt, tokenizer=count)
            assert r.tokens == count(r.text) <= budget, (p.user_id, budget)
            assert r.top_domain == top and top in r.text
            lines = _lines(r.text, fmt)
            assert lines and all(line in whole for line in lines), (p.user_id, budget)  # never a half line
            assert len(lines) == r.lines_kept - 1
            assert kept_before is None or r.lines_kept >= kept_before  # a larger budget never keeps less
            kept_before = r.lines_kept
            cut_somewhere += r.dropped > 0
            if fmt != "json" and r.dropped:
                # the lowest priority goes first: a topic line only when every domain line is in
                shown_domains = [x for x in lines if x.startswith("- ")]
                if any(x.startswith("  - ") for x in lines):
                    assert len(shown_domains) == len(p.domains)
                assert f"{r.dropped} minor lines left out" in r.text.splitlines()[0]
    assert cut_somewhere > 0  # the budgets do cut (the test is not vacuous)


def test_drops_only_what_it_must(made: tuple[Path, list[InterestProfile]], count: TextTokens) -> None:
    """At each budget, the text with one entry more (what a larger budget keeps) would be over it."""
    p = made[1][0]
    full = render_context(p, 100_000, tokenizer=count)
    fits: dict[int, tuple[int, int]] = {}  # budget -> (entries kept, tokens)
    for budget in range(30, full.tokens + 1, 3):
        try:
            r = render_context(p, budget, tokenizer=count)
        except ContextBudgetError:
            continue
        fits[budget] = (r.lines_kept, r.tokens)
    assert len({k for k, _ in fits.values()}) > 3  # the range does cut at several points
    for budget, (kept, _) in fits.items():
        larger = [tokens for k, tokens in fits.values() if k > kept]
        assert all(tokens > budget for tokens in larger), budget


def test_too_small_a_budget_says_how_many_tokens_it_needs(
    made: tuple[Path, list[InterestProfile]], count: TextTokens
) -> None:
    p = made[1][0]
    with pytest.raises(
        ContextBudgetError, match=r"the header and the top domain alone take (\d+) tokens"
    ) as e:
        interests.context(p, tokens=10, tokenizer=count)
    need = int(str(e.value).split("take ")[1].split()[0])
    r = render_context(p, need, tokenizer=count)
    assert r.tokens == need and r.lines_kept == 2
    assert r.text.splitlines()[1].startswith(f"- {r.top_domain}: ")


def test_lines_carry_share_evidence_trend_and_confidence(made: tuple[Path, list[InterestProfile]]) -> None:
    p = next(p for p in made[1] if p.user_id == "u001")
    text = interests.context(p, tokens=512)
    d = p.domains[0]
    tr = next(t for t in p.time_patterns.by_domain if t.domain == d.name)
    line = next(x for x in text.splitlines() if x.startswith(f"- {d.name}: "))
    assert f"{round(100 * d.weight)}%, {tr.n_events} events, {tr.trend}, last {tr.last_seen[:7]}" in line
    assert line.endswith(" confidence")
    md = interests.context(p, tokens=512, format="markdown")
    assert f"- **{d.name}**: " in md and md.startswith("**Interests of user u001**")
    doc = json.loads(interests.context(p, tokens=512, format="json"))
    assert doc["user"] == "u001" and doc["domains"][0]["name"] == d.name
    assert doc["domains"][0]["events"] == tr.n_events and "confidence" in doc["domains"][0]
    assert interests.context(p.model_dump(mode="json"), tokens=512) == text  # a dict (a JSON line) works too


def test_template_override_and_template_errors(
    made: tuple[Path, list[InterestProfile]], tmp_path: Path
) -> None:
    p = made[1][0]
    mine = tmp_path / "mine.j2"
    mine.write_text("{{ user.id }}\n{% for d in domains %}\n* {{ d.name }} {{ d.percent }}\n{% endfor %}\n")
    text = interests.context(p, tokens=512, template=mine)
    assert text.splitlines() == [p.user_id] + [f"* {d.name} {round(100 * d.weight)}" for d in p.domains]
    bad = tmp_path / "bad.j2"
    bad.write_text("{{ user.nickname }}")
    with pytest.raises(ConfigError, match="context template error"):
        interests.context(p, tokens=512, template=bad)
    with pytest.raises(ConfigError, match="no such file"):
        interests.context(p, tokens=512, template=tmp_path / "absent.j2")
    with pytest.raises(ConfigError, match="unknown context format"):
        interests.context(p, tokens=512, format="yaml")


def test_another_tokenizer_folder_counts(made: tuple[Path, list[InterestProfile]], count: TextTokens) -> None:
    from interests.llm.tokens import tokenizer_path

    p = made[1][0]
    folder = tokenizer_path(None)  # the embedded model's folder, named as a folder
    assert render_context(p, 128, tokenizer=folder).text == render_context(p, 128, tokenizer=count).text
    by_chars = render_context(p, 300, tokenizer=len)  # any function of a string counts: characters here
    assert len(by_chars.text) <= 300 and by_chars.dropped > 0
    with pytest.raises(ConfigError, match="no such folder"):
        render_context(p, 128, tokenizer="/nonexistent/tokenizer")


def _run(*args: Any) -> Any:
    return CliRunner().invoke(cli, ["context", *map(str, args)])


def test_cli_prints_the_sdk_text_and_exit_codes(made: tuple[Path, list[InterestProfile]]) -> None:
    path, profiles = made
    a, b = profiles[0], profiles[1]
    res = _run(a.user_id, b.user_id, "--profiles", path, "--tokens", 128)
    assert res.exit_code == 0, res.output
    assert res.stdout == interests.context(a, tokens=128) + "\n\n" + interests.context(b, tokens=128) + "\n"
    res = _run(a.user_id, b.user_id, "--profiles", path, "--tokens", 256, "--format", "json")
    assert [json.loads(x)["user"] for x in res.stdout.splitlines()] == [a.user_id, b.user_id]
    res = _run(a.user_id, "--profiles", path, "--tokens", 10)
    assert res.exit_code == 1 and "Error: user" in res.output and "over the budget of 10" in res.output
    assert "Traceback" not in res.output
    res = _run("nobody", "--profiles", path)
    assert res.exit_code == 1 and "no profile for user 'nobody'" in res.output
    assert _run(a.user_id, "--profiles", path, "--tokens", 0).exit_code == 2
    assert _run(a.user_id, "--profiles", path, "--format", "yaml").exit_code == 2
    assert _run(a.user_id, "--profiles", path, "--tokenizer", "/nonexistent/dir").exit_code == 1
