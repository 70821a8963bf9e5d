"""Start and stop vLLM's OpenAI-compatible server for extraction (``interests serve``).

On these CPU machines the server is started as
``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script
of the CPU build looks up the wrong distribution name). The flags are the
ones the extractor needs: the guidance structured-output backend (it
compiles every schema we send) and compact JSON.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..errors import BackendError
from .cpu_env import apply_cpu_engine_env
from .lifeline import parent_death_preexec
from .weights import interests_home, model_label, resolve_model


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_command(
    model_path: str,
    *,
    served_name: str,
    host: str,
    port: int,
    max_model_len: int,
    tensor_parallel_size: int = 1,
    enforce_eager: bool | None = None,
    dtype: str | None = None,
    extra_args: list[str] | None = None,
) -> list[str]:
    """The command line that starts the server (shown by ``interests serve --dry-run``).

    ``enforce_eager=None``: eager on the CPU, CUDA graphs on a GPU.
    ``dtype=None``: bfloat16 where the CPU computes it natively, else float32; vLLM's choice on a GPU.
    """
    from interests.llm.cpu_env import enforce_eager as resolve_eager
    from interests.llm.cpu_env import resolve_dtype

    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_path,
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--tensor-parallel-size",
        str(tensor_parallel_size),
        "--dtype",
        resolve_dtype(dtype),
        "--structured-outputs-config",
        '{"backend": "guidance", "disable_any_whitespace": true}',
        "--enable-prefix-caching",
        *(["--enforce-eager"] if resolve_eager(enforce_eager) else []),
        "--disable-uvicorn-access-log",
        *(extra_args or []),
    ]


@dataclass
class ServerProcess:
    """A running vLLM server; ``base_url`` ends in ``/v1``."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    model: str
    log_path: Path | None = None
    _log: object = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_healthy(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://{self.host}:{self.port}/health"
        while time.monotonic() < deadline:
            if not self.alive():
                raise BackendError(
                    f"the vLLM server exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        self.stop()
        raise BackendError(
            f"the vLLM server did not become healthy within {timeout:.0f}s; see {self.log_path}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the server's process group, then SIGKILL after ``timeout``."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def kill(self) -> None:
        """SIGKILL the whole server at once (what a crash looks like)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    model: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_model_len: int = 4096,
    tensor_parallel_size: int = 1,
    enforce_eager: bool | None = None,
    dtype: str | None = None,
    log_path: str | Path | None = None,
    wait: bool = True,
    timeout: float = 600.0,
    extra_args: list[str] | None = None,
) -> ServerProcess:
    """Start vLLM's OpenAI-compatible server on ``model`` (default: the embedded model).

    With ``wait`` it returns once ``/health`` answers; anything raised meanwhile
    (a failed start, the timeout, ``KeyboardInterrupt``) stops the server and
    closes its log before it propagates. On Linux, called from the main thread,
    the server also gets SIGTERM when this process dies (``PR_SET_PDEATHSIG``).
    """
    path = resolve_model(model)
    port = port or free_port(host)
    cmd = server_command(
        path,
        served_name=model_label(model),
        host=host,
        port=port,
        max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        enforce_eager=enforce_eager,
        dtype=dtype,
        extra_args=extra_args,
    )
    env = {**os.environ}
    apply_cpu_engine_env(env)
    if log_path is None:  # always keep the log: a failed start must leave something to read
        log_dir = interests_home() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"vllm-server-{port}.log"
    # Own session: a Ctrl-C in the terminal reaches the caller, which stops the whole server group.
    # Parent-death signal (Linux, from the main thread only: Linux ties it to the thread that forks):
    # the server gets SIGTERM, and shuts its engine down, if the caller dies without stopping it.
    main_thread = threading.current_thread() is threading.main_thread()
    preexec = parent_death_preexec(signal.SIGTERM) if main_thread else None
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=preexec
        )
    except BaseException:
        log.close()
        raise
    server = ServerProcess(proc, host, port, model_label(model), Path(log_path), log)
    if wait:
        try:
            server.wait_healthy(timeout)
        except BaseException:  # Ctrl-C, SIGTERM turned into an exception, a failed start: stop and close
            server.stop()
            raise
    return server


__all__ = ["ServerProcess", "free_port", "server_command", "start_server"]
