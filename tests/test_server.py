"""Server mode: the request contract, fault handling, and a real vLLM server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLES, expected_exit, interests_cmd
from procs import descendants, describe, needs_proc, survivors

from interests.errors import BackendError
from interests.llm.base import GenRequest
from interests.llm.launch import free_port, start_server
from interests.llm.server import ServerBackend
from interests.profile.draft import draft_model
from interests.profile.store import iter_jsonl, read_profiles

DRAFT = {
    "summary": "Likes the things in the log.",
    "domains": [{"name": "Main", "topics": [{"name": "Fav", "item_ids": ["a"], "attributes": []}]}],
}


def _completion(content: str, finish: str = "stop") -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _backend(handler, **kw) -> ServerBackend:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ServerBackend("http://server.test/v1", model="served", http_client=client, **kw)


def test_request_body_contract():
    """Pins the exact JSON body sent: a library upgrade that changes it must fail here."""
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_completion(json.dumps(DRAFT)))

    model = draft_model(["a", "b"])
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "log"}]
    [res] = _backend(handler).generate([GenRequest("u1", messages, model, 321, 0.0, 0)])
    assert res.finish_reason == "stop" and json.loads(res.text) == DRAFT
    assert seen == [
        {
            "model": "served",
            "messages": messages,
            "max_tokens": 321,
            "temperature": 0.0,
            "seed": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "DraftProfile", "schema": model.model_json_schema()},
            },
        }
    ]
    enum = seen[0]["response_format"]["json_schema"]["schema"]["$defs"]["DraftTopic"]["properties"][
        "item_ids"
    ]
    assert enum["items"]["enum"] == ["a", "b"]


def test_cutoff_is_reported_as_length_and_5xx_is_retried():
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(503, json={"error": "busy"})
        return httpx.Response(200, json=_completion('{"summary": "cut', "length"))

    [res] = _backend(handler).generate(
        [GenRequest("u1", [{"role": "user", "content": "x"}], draft_model(["a"]))]
    )
    assert res.finish_reason == "length" and calls["n"] == 3


def test_server_down_mid_run_raises_after_retries():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(BackendError, match=r"failed 3 times.*re-run to resume"):
        _backend(handler, connect_retries=2).generate(
            [GenRequest("u1", [{"role": "user", "content": "x"}], draft_model(["a"]))]
        )


def test_unreachable_server_is_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError, match="interests serve"):
        ServerBackend(url)
    proc = subprocess.run(
        interests_cmd(
            "extract", str(EXAMPLES / "events.csv"), "--server", url, "-o", str(tmp_path / "p.jsonl")
        ),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert f"Error: cannot reach an OpenAI-compatible server at {url}" in proc.stderr
    assert "Traceback" not in proc.stderr


class RestartableServer:
    def __init__(self, log: Path) -> None:
        self.log, self.port = log, free_port()
        self.proc = start_server(port=self.port, log_path=log, timeout=900)

    def restart(self) -> None:
        self.proc.stop()
        self.proc = start_server(port=self.port, log_path=self.log, timeout=900)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    server = RestartableServer(tmp_path_factory.mktemp("server") / "vllm.log")
    yield server
    server.proc.stop()


def _extract(url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        interests_cmd(
            "extract",
            str(EXAMPLES / "events.csv"),
            "--catalog",
            str(EXAMPLES / "catalog.jsonl"),
            "--server",
            url,
            "-o",
            str(out),
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _own_items() -> dict[str, set[str]]:
    own: dict[str, set[str]] = {}
    for line in (EXAMPLES / "events.csv").read_text().splitlines()[1:]:
        u, i = line.split(",")[:2]
        own.setdefault(u, set()).add(i)
    return own


def _ids(out: Path) -> list[str]:
    return [d["user_id"] for d in iter_jsonl(out)] + [
        d["user_id"] for d in iter_jsonl(out.with_name(out.stem + ".errors.jsonl"))
    ]


@pytest.mark.server
def test_extract_against_a_real_vllm_server_killed_client_then_rerun(vllm_server, tmp_path):
    """`interests extract --server` SIGKILLed after a batch, then re-run: every user once, grounded."""
    import signal

    out = tmp_path / "p.jsonl"
    url = vllm_server.proc.base_url
    cmd = interests_cmd(
        "extract",
        str(EXAMPLES / "events.csv"),
        "--catalog",
        str(EXAMPLES / "catalog.jsonl"),
        "--server",
        url,
        "-o",
        str(out),
        "--limit",
        "6",
        "--batch-size",
        "2",
        "--concurrency",
        "2",
    )
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {d["user_id"] for d in iter_jsonl(out)}
    assert before
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == expected_exit(out.with_name("p.errors.jsonl")), proc.stderr[-3000:]
    ids = _ids(out)
    assert sorted(ids) == [f"u{i:03d}" for i in range(1, 7)] and before <= set(ids)
    profiles = read_profiles(out)
    assert len(profiles) >= 4, proc.stderr[-2000:]
    own = _own_items()
    for p in profiles:
        assert p.item_ids() <= own[p.user_id]
        assert p.provenance.backend == "server" and p.provenance.server == url
        assert p.provenance.model == "smollm2-135m"


@pytest.mark.server
def test_server_killed_mid_run_then_rerun_completes(vllm_server, tmp_path):
    out = tmp_path / "p.jsonl"
    extra = ("--limit", "4", "--batch-size", "2", "--concurrency", "2")
    proc = _extract(vllm_server.proc.base_url, out, *extra)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 2):
        time.sleep(0.5)
    assert out.exists(), "no batch finished before the deadline"
    vllm_server.proc.kill()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode != 0
    assert "failed" in err and "re-run to resume" in err and "Traceback" not in err
    done_before = read_profiles(out)  # every line complete and valid
    assert 2 <= len(done_before) < 4
    vllm_server.restart()
    proc = _extract(vllm_server.proc.base_url, out, *extra)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == expected_exit(out.with_name("p.errors.jsonl")), err[-3000:]
    ids = _ids(out)
    assert sorted(ids) == [f"u{i:03d}" for i in range(1, 5)]
    assert {p.user_id for p in done_before} <= set(ids)
    assert os.path.getsize(out) > 0


@pytest.mark.server
def test_interests_serve_command_serves_and_stops_on_sigterm(tmp_path):
    """`interests serve` itself: prints the URL, answers /v1/models with the embedded model, and
    SIGTERM stops it together with the vLLM process group (nothing left listening)."""
    import signal

    log = tmp_path / "vllm.log"
    proc = subprocess.Popen(
        interests_cmd("serve", "--port", "0", "--log", str(log)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed once the server is healthy
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), proc.stderr.read()[-2000:]
        models = httpx.get(f"{url}/models", timeout=30).json()
        assert [m["id"] for m in models["data"]] == ["smollm2-135m"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "server stopped" in err, err[-2000:]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/models", timeout=5)


@pytest.mark.server
@needs_proc
@pytest.mark.parametrize("sig_name", ["SIGTERM", "SIGINT"])
def test_interests_serve_signalled_while_starting_leaves_no_process(tmp_path, sig_name):
    """Ctrl-C or SIGTERM while vLLM is still loading: the server (own session) and its engine stop,
    the command says so and exits 130. Before: the server kept running (and kept its log open)."""
    import signal

    sig = signal.Signals[sig_name]
    proc = subprocess.Popen(
        interests_cmd("serve", "--port", "0", "--log", str(tmp_path / "vllm.log")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server: dict[int, tuple[str, int]] = {}
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:  # until the server has its engine
            server = descendants(proc.pid)
            if any(depth == 2 for _, depth in server.values()):
                break
            time.sleep(0.2)
        assert any(depth == 2 for _, depth in server.values()), describe(list(server))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and "server stopped" in err, err[-2000:]  # interrupted
        assert out == "" and "Traceback" not in err, err[-2000:]  # never became ready
        left = survivors(server, timeout=60)
        assert not left, describe(left)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in survivors(server, timeout=0):
            os.kill(pid, signal.SIGKILL)
