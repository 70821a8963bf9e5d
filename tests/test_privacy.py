"""Private data: redaction of free text, and keyed pseudonyms for user ids.

A corpus of personal data (e-mail addresses, phone numbers in several
national formats, payment card numbers that pass the Luhn check, plain and
grouped, US social security numbers, IP addresses, links with query strings)
and of near misses that must stay (years, dates, ratings, prices, ISBNs,
timestamps, short numbers, item ids). Leaks are looked for in rendered
prompts, in the profiles and error records extraction writes (with a fake
backend that copies the user's own words back into its output) and in
reports.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from interests.errors import ConfigError
from interests.events import Catalog, Event, Item, UserHistory
from interests.llm.base import GenRequest
from interests.llm.fake import FakeBackend, schema_answer
from interests.profile.extract import extract_profiles, sibling_path
from interests.profile.privacy import (
    KEY_ENV,
    check_resume_ids,
    hash_user_id,
    is_hashed,
    key_from_env,
    pseudonymise,
)
from interests.profile.prompting import PromptRenderer
from interests.profile.redact import Redactor, redact
from interests.profile.signals import compute_signals
from interests.profile.store import iter_jsonl, read_errors, read_profiles

# (kind, text): each must become "[kind]"
PII: list[tuple[str, str]] = [
    ("email", "jane.doe@example.com"),
    ("email", "JOHN+news@Mail.Example.co.uk"),
    ("email", "a_b-c.d@sub.domain.org"),
    ("phone", "(555) 123-4567"),
    ("phone", "555-123-4567"),
    ("phone", "555.123.4567"),
    ("phone", "+1 555 123 4567"),
    ("phone", "+1-555-123-4567"),
    ("phone", "+15551234567"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+44 (0)20 7946 0958"),
    ("phone", "020 7946 0958"),
    ("phone", "+33 1 42 68 53 00"),
    ("phone", "01 42 68 53 00"),
    ("phone", "+49 30 1234567"),
    ("phone", "030 12345678"),
    ("phone", "+4930123456"),
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "4111111111111111"),
    ("card", "5555 5555 5555 4444"),
    ("card", "3782 822463 10005"),
    ("card", "378282246310005"),
    ("card", "6011111111111117"),
    ("card", "6011-0009-9013-9424"),
    ("url", "https://shop.example.com/track?uid=123&ref=mail"),
    ("url", "http://t.co/a?b=c"),
    ("url", "www.example.org/p?ref=abc&u=jane"),
    ("url", "HTTPS://EXAMPLE.COM/?q=1"),
    ("ssn", "078-05-1120"),
    ("ip", "192.168.1.23"),
]
# must come through unchanged
NEAR_MISSES: list[str] = [
    "ISBN 978-0-306-40615-7",
    "ISBN 0-306-40615-2",
    "9780306406157",
    "0306406152",
    "back in 1999",
    "from 1999-2004",
    "delivered 2021-03-10 14:30",
    "on 10.03.2021",
    "rated 4.5/5",
    "10/10 would buy",
    "$1,299.99",
    "12.50 EUR",
    "only 3.99",
    "42 pages",
    "item i9999",
    "B00005N5PF",
    "tt0111161",
    "1600000000",
    "964982703",
    "12 345 sold",
    "WH-1000XM4",
    "EF 70-200mm",
    "https://example.com/products/123",
    "version 1.2.3",
    "4 stars out of 5",
    "pages 120-135",
    "@janedoe on the forum",
    "4111 1111 1111 1112",  # a card-like number failing the Luhn check
]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


MASK = str.maketrans("0123456789[]{}<>", "abcdefghij()()()")


def _mask(text: str) -> str:
    """What the echoing fake backend can put in a summary (no digits or brackets allowed there)."""
    return text.translate(MASK)


def _leaks(output: str, secret: str) -> bool:
    """Whether ``secret`` (or its digits, or their masked form) appears in ``output``."""
    forms = {secret, _mask(secret), secret.lower(), _mask(secret).lower()}
    if any(f in output for f in forms):
        return True
    digits = _digits(secret)  # the number written without its separators
    return len(digits) >= 7 and bool(
        re.search(rf"(?<![0-9a-j])(?:{digits}|{_mask(digits)})(?![0-9a-j])", output)
    )


@pytest.mark.parametrize(("kind", "text"), PII, ids=[t for _, t in PII])
def test_pii_is_redacted(kind: str, text: str) -> None:
    r = Redactor()
    out = r(f"Contact: {text}, thanks!")
    assert out == f"Contact: [{kind}], thanks!"
    assert dict(r.counts) == {kind: 1}
    assert not _leaks(out or "", text)


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_kept(text: str) -> None:
    r = Redactor()
    assert r(f"I said {text}.") == f"I said {text}."
    assert r.total == 0


def test_redaction_off_and_on_empty() -> None:
    assert Redactor(enabled=False)("mail jane.doe@example.com") == "mail jane.doe@example.com"
    assert redact(None) is None and redact("") == ""


def test_redaction_is_linear_on_adversarial_text() -> None:
    nasty = ("+1" + "2" * 60 + " ") * 30 + "1 " * 500 + "12-" * 700 + "4" * 2000 + "a@" * 500
    start = time.perf_counter()
    redact(nasty)
    assert time.perf_counter() - start < 1.0


def test_prompts_hold_no_pii() -> None:
    cat = Catalog({f"x{k}": Item(f"x{k}", f"Gift for {text}", ["Gifts"]) for k, (_, text) in enumerate(PII)})
    events = [Event("u", f"x{k}", 1.6e9 + k, 5.0, f"call {text} now") for k, (_, text) in enumerate(PII)]
    h = UserHistory("u", events)
    renderer = PromptRenderer(redactor=Redactor())
    prompt = renderer.render(h, compute_signals(h, cat), cat, max_tokens=100_000, max_items=1000)
    content = "\n".join(m["content"] for m in prompt.messages)
    assert [text for _, text in PII if _leaks(content, text)] == []
    assert sum(renderer.redactor.counts.values()) == 2 * len(PII)  # every title and every review


# --- end to end: what reaches the output files ---------------------------------------------------

LINE = re.compile(r"^\s*\[[^\]]+\] (.*)$", re.MULTILINE)


def _log_lines(request: GenRequest) -> str:
    return " ".join(LINE.findall(request.messages[1]["content"]))


def _draft(request: GenRequest, summary: str) -> str:
    return json.dumps(schema_answer(request.schema(), name="Gifts and more", summary=summary, n_items=1))


def echo_valid(request: GenRequest, attempt: int) -> tuple[str, str]:
    """A valid draft whose summary copies the user's log lines (title, date, own words)."""
    return _draft(request, ("Echo: " + _mask(_log_lines(request)))[:200]), "stop"


def echo_raw(request: GenRequest, attempt: int) -> tuple[str, str]:
    """An invalid draft (digits and brackets) copying the log lines: it ends in an error record."""
    return _draft(request, "Echo: " + _log_lines(request)), "stop"


def _corpus() -> tuple[dict[str, UserHistory], Catalog, list[str]]:
    """One user per case, one item each, the text once: in the item's title (even cases) or
    in the user's review (odd cases and near misses)."""
    items: dict[str, Item] = {}
    histories: dict[str, UserHistory] = {}
    markers: list[str] = []
    cases = [("pii", t) for _, t in PII] + [("near", t) for t in NEAR_MISSES]
    for k, (kind, text) in enumerate(cases):
        uid, iid, marker = f"user{k:03d}", f"item{k:03d}", f"marker{_mask(f'{k:03d}')}"
        in_title = kind == "pii" and k % 2 == 0
        items[iid] = Item(iid, f"Gift {text}" if in_title else "Plain gift", ["Gifts"])
        review = f"{marker} wrote {'nothing' if in_title else text} here"
        histories[uid] = UserHistory(uid, [Event(uid, iid, 1.6e9 + k, 4.0, review, "review")])
        markers.append(marker)
    return histories, Catalog(items), markers


@pytest.mark.parametrize("script", [echo_valid, echo_raw])
def test_outputs_hold_no_pii(script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    histories, cat, markers = _corpus()
    out = tmp_path / "profiles.jsonl"
    res = extract_profiles(histories, catalog=cat, output=out, backend=FakeBackend(script), batch_size=16)
    assert res.profiles + res.errors == len(histories)
    assert (res.errors == 0) if script is echo_valid else (res.profiles == 0)
    text = out.read_text() if out.exists() else ""
    text += sibling_path(out, "errors").read_text() if sibling_path(out, "errors").exists() else ""
    # no case leaked
    assert [t for _, t in PII if _leaks(text, t)] == []
    if script is echo_raw:
        # error records keep the raw output: what the fake copied reached the file, redacted,
        # and every near miss came through. (A valid draft's echoed summary is replaced by
        # grounding, which rejects summaries that echo the prompt.)
        assert all(m in text for m in markers)
        assert [t for t in NEAR_MISSES if t in text] == NEAR_MISSES
    expected: dict[str, int] = {}
    for kind, _ in PII:
        expected[kind] = expected.get(kind, 0) + 1
    assert res.redactions == expected


def test_no_redact_lets_pii_through(tmp_path: Path) -> None:
    """The control: without redaction the same run leaks, so the test above can see a leak."""
    histories, cat, _ = _corpus()
    out = tmp_path / "profiles.jsonl"
    res = extract_profiles(histories, catalog=cat, output=out, backend=FakeBackend(echo_raw), redact=False)
    assert res.redactions == {}
    text = sibling_path(out, "errors").read_text()
    assert len([t for _, t in PII if _leaks(text, t)]) == len(PII)


def test_reports_hold_no_pii(tmp_path: Path) -> None:
    report = pytest.importorskip("interests.report")
    histories, cat, _ = _corpus()
    out = tmp_path / "profiles.jsonl"

    def half_raw(request: GenRequest, attempt: int) -> tuple[str, str]:  # profiles and error records
        return (echo_raw if int(request.key[-1]) % 2 else echo_valid)(request, attempt)

    res = extract_profiles(histories, catalog=cat, output=out, backend=FakeBackend(half_raw))
    assert res.profiles and res.errors
    for fmt in ("html", "md"):
        page = report.render_report(
            out, all_users=True, errors=sibling_path(out, "errors"), format=fmt, max_sections=None
        )
        assert all(uid in page for uid in histories)  # every user, profile or error record, is in the report
        assert [t for _, t in PII if _leaks(page, t)] == [], fmt


def test_reports_with_logs_hold_no_pii(tmp_path: Path) -> None:
    report = pytest.importorskip("interests.report")
    histories, cat, _ = _corpus()
    out = tmp_path / "profiles.jsonl"
    extract_profiles(histories, catalog=cat, output=out, backend=FakeBackend(echo_valid))
    page = report.render_report(
        out, all_users=True, logs=histories, catalog=cat, format="md", max_sections=None
    )
    assert [t for _, t in PII if _leaks(page, t)] == []


# --- keyed pseudonyms for user ids ----------------------------------------------------------------

KEY = b"test key, at least sixteen characters"


def test_hash_user_id_is_keyed_stable_and_short() -> None:
    h = hash_user_id("alice@example.com", KEY)
    assert re.fullmatch(r"h_[0-9a-f]{16}", h) and is_hashed(h)
    assert h == hash_user_id("alice@example.com", KEY)
    assert h != hash_user_id("alice@example.com", KEY + b"!")
    assert h != hash_user_id("alice@example.co", KEY)
    assert not is_hashed("alice") and not is_hashed("h_XYZ")
    import hashlib
    import hmac

    assert h == "h_" + hmac.new(KEY, b"alice@example.com", hashlib.sha256).hexdigest()[:16]


def test_key_from_env() -> None:
    assert key_from_env({KEY_ENV: "0123456789abcdef0123"}) == b"0123456789abcdef0123"
    with pytest.raises(ConfigError, match=KEY_ENV):
        key_from_env({})
    with pytest.raises(ConfigError, match=KEY_ENV):
        key_from_env({KEY_ENV: "   "})
    with pytest.raises(ConfigError, match="too short"):
        key_from_env({KEY_ENV: "short"})


def test_pseudonymise_keeps_order_and_shares_events() -> None:
    hs = {u: UserHistory(u, [Event(u, "i1")]) for u in ("b", "a", "c")}
    out, users = pseudonymise(hs, ["a"], KEY)
    assert list(out) == [hash_user_id(u, KEY) for u in ("b", "a", "c")]
    assert all(h.user_id == k for k, h in out.items())
    assert out[hash_user_id("a", KEY)].events is hs["a"].events
    assert users == {hash_user_id("a", KEY)}


def test_check_resume_ids() -> None:
    check_resume_ids([], hashed=True)
    check_resume_ids(["u1"], hashed=False)
    check_resume_ids([hash_user_id("u1", KEY)], hashed=True)
    with pytest.raises(ConfigError, match="raw user ids"):
        check_resume_ids(["u1", hash_user_id("u2", KEY)], hashed=True)
    with pytest.raises(ConfigError, match="--hash-user-ids"):
        check_resume_ids([hash_user_id("u2", KEY)], hashed=False)


def test_extract_with_hashed_ids_writes_no_raw_id_and_resumes(tmp_path: Path) -> None:
    histories, cat, _ = _corpus()
    raw = {u: f"{u}@example.com" for u in histories}  # ids that are themselves personal data
    histories = {raw[u]: UserHistory(raw[u], h.events) for u, h in histories.items()}
    out = tmp_path / "profiles.jsonl"

    def half_fail(request: GenRequest, attempt: int) -> tuple[str, str]:
        return (
            ("not json", "stop") if int(_digits(request.key[:8]) or 0) % 2 else echo_valid(request, attempt)
        )

    res = extract_profiles(
        histories,
        catalog=cat,
        output=out,
        backend=FakeBackend(half_fail),
        hash_key=KEY,
        limit=20,
        users=list(histories)[:30],
    )
    assert res.profiles + res.errors == 20 and res.profiles and res.errors
    ids = [p.user_id for p in read_profiles(out)] + [
        e.user_id for e in read_errors(sibling_path(out, "errors"))
    ]
    assert sorted(ids) == sorted(hash_user_id(u, KEY) for u in list(histories)[:20])
    text = out.read_text() + sibling_path(out, "errors").read_text()
    assert not [u for u in histories if u in text or u.split("@")[0] in text]
    # resume: the first 20 are done (compared as pseudonyms), the rest are added, nothing twice
    backend = FakeBackend(echo_valid)
    res2 = extract_profiles(histories, catalog=cat, output=out, backend=backend, hash_key=KEY)
    assert res2.users_skipped == 20 and res2.profiles == len(histories) - 20
    all_ids = [d["user_id"] for d in iter_jsonl(out)] + [
        d["user_id"] for d in iter_jsonl(sibling_path(out, "errors"))
    ]
    assert len(all_ids) == len(set(all_ids)) == len(histories)
    assert all(is_hashed(r.key) for call in backend.calls for r in call)
    assert all("Person h_" in r.messages[1]["content"] for call in backend.calls for r in call)
    # retrying the errors works on pseudonyms too
    res3 = extract_profiles(
        histories, catalog=cat, output=out, backend=FakeBackend(echo_valid), hash_key=KEY, retry_errors=True
    )
    assert res3.profiles == res.errors and read_errors(sibling_path(out, "errors")) == []
    # the other kind of id into the same output is refused before any work
    with pytest.raises(ConfigError, match="hash-user-ids"):
        extract_profiles(histories, catalog=cat, output=out, backend=FakeBackend(echo_valid))


def _cli_logs(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(
        "user,item,rating,timestamp,review\n"
        "alice@example.com,i1,5,1600000000,great call me 555-123-4567\n"
        "bob@example.com,i2,2,1600000100,meh\n"
    )
    return path


def test_cli_hash_user_ids_needs_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from interests.cli import cli

    monkeypatch.delenv(KEY_ENV, raising=False)
    result = CliRunner().invoke(
        cli, ["extract", str(_cli_logs(tmp_path)), "-o", str(tmp_path / "p.jsonl"), "--hash-user-ids"]
    )
    assert result.exit_code == 1 and KEY_ENV in result.output and "export" in result.output
    assert not (tmp_path / "p.jsonl").exists()


def test_cli_hash_user_ids_writes_pseudonyms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from interests.cli import cli

    import interests.llm.vllm_local as vllm_local

    monkeypatch.setenv(KEY_ENV, KEY.decode())
    monkeypatch.setattr(vllm_local, "VLLMBackend", lambda *a, **k: FakeBackend(echo_valid))
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(cli, ["extract", str(_cli_logs(tmp_path)), "-o", str(out), "--hash-user-ids"])
    assert result.exit_code == 0, result.output
    ids = {p.user_id for p in read_profiles(out)}
    assert ids == {hash_user_id("alice@example.com", KEY), hash_user_id("bob@example.com", KEY)}
    assert "example.com" not in out.read_text() and "4567" not in out.read_text()
    assert "redacted 1 spans" in result.output


def test_reports_and_taxonomies_match_hashed_profiles_to_raw_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Profiles written with --hash-user-ids silently matched no log user in report and taxonomy."""
    from interests.cli import cli

    import interests.llm.vllm_local as vllm_local
    from interests.profile.privacy import match_ids

    monkeypatch.setenv(KEY_ENV, KEY.decode())
    monkeypatch.setattr(vllm_local, "VLLMBackend", lambda *a, **k: FakeBackend(echo_valid))
    logs, out = _cli_logs(tmp_path), tmp_path / "p.jsonl"
    assert CliRunner().invoke(cli, ["extract", str(logs), "-o", str(out), "--hash-user-ids"]).exit_code == 0
    alice = hash_user_id("alice@example.com", KEY)
    args = ["report", str(out), "--user", alice, "--logs", str(logs), "--format", "md", "-o", "-"]
    matched = CliRunner().invoke(cli, args)
    assert matched.exit_code == 0, matched.output
    assert "events.csv:" in matched.stdout  # evidence rows from the log: the user was matched
    assert "alice@example.com" not in matched.stdout
    monkeypatch.delenv(KEY_ENV)
    unmatched = CliRunner().invoke(cli, args)
    assert unmatched.exit_code == 1 and KEY_ENV in unmatched.output and "Traceback" not in unmatched.output
    histories = {"alice@example.com": UserHistory("alice@example.com", [])}
    with pytest.raises(ConfigError, match="another key"):
        match_ids(histories, [alice], env={KEY_ENV: "a different key of enough length"})
    assert match_ids(histories, ["alice@example.com"]) is histories  # raw profiles: nothing to do
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    from interests.cli.taxonomy import _read

    _, _, by_user = _read(str(out), None, (str(logs),), None, None)  # what `taxonomy build --logs` reads
    assert by_user is not None and set(by_user) == {alice, hash_user_id("bob@example.com", KEY)}


def test_train_matches_hashed_profiles_to_raw_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train --profiles` with hashed profiles used no profile at all (no log user matched)."""
    from interests.cli import cli

    import interests.llm.vllm_local as vllm_local
    from interests.recsys import TwoTower

    monkeypatch.setenv(KEY_ENV, KEY.decode())
    monkeypatch.setattr(vllm_local, "VLLMBackend", lambda *a, **k: FakeBackend(echo_valid))
    logs, out = _cli_logs(tmp_path), tmp_path / "p.jsonl"
    assert CliRunner().invoke(cli, ["extract", str(logs), "-o", str(out), "--hash-user-ids"]).exit_code == 0
    model = tmp_path / "model"
    args = ["train", str(logs), "--profiles", str(out), "-o", str(model), "--epochs", "1"]
    res = CliRunner().invoke(cli, [*args, "--no-holdout"])
    assert res.exit_code == 0, res.output
    users = set(TwoTower.load(model).known.user_ids)  # type: ignore[union-attr]
    assert users == {hash_user_id("alice@example.com", KEY), hash_user_id("bob@example.com", KEY)}
