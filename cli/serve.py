"""``interests serve``: vLLM's OpenAI-compatible server with the flags extraction needs."""

from __future__ import annotations

import shlex
import signal
import time
from typing import Any

import click

from .common import engine_options, model_option, sdk_command


@click.command()
@model_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0: a free one).")
@click.option("--max-model-len", type=int, default=4096, show_default=True, help="Context length.")
@engine_options
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="Write the server's log here.")
@click.option(
    "--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait until it is healthy."
)
@click.option("--dry-run", is_flag=True, help="Print the server command and exit.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@sdk_command
def serve(
    model: str | None,
    host: str,
    port: int,
    max_model_len: int,
    tensor_parallel_size: int,
    enforce_eager: bool | None,
    dtype: str | None,
    log_path: str | None,
    timeout: float,
    dry_run: bool,
    extra: tuple[str, ...],
) -> None:
    """Start a vLLM server for `interests extract --server URL`; stop it with Ctrl-C.

    Arguments after `--` go to vLLM unchanged (e.g. `-- --gpu-memory-utilization 0.8`).
    """
    from interests.llm.launch import free_port, server_command, start_server
    from interests.llm.weights import model_label, resolve_model

    port = port or free_port(host)
    engine: dict[str, Any] = {
        "host": host,
        "port": port,
        "max_model_len": max_model_len,
        "tensor_parallel_size": tensor_parallel_size,
        "enforce_eager": enforce_eager,
        "dtype": dtype,
        "extra_args": list(extra),
    }
    if dry_run:
        click.echo(shlex.join(server_command(resolve_model(model), served_name=model_label(model), **engine)))
        return
    click.echo(f"starting vLLM on {host}:{port} with {model_label(model)} ...", err=True)
    # Ctrl-C and SIGTERM stop the server at any moment. While it starts, the first one raises
    # KeyboardInterrupt out of the health wait (start_server then stops the server and closes its
    # log): "server stopped", status 130 (interrupted, as every command). Once it serves, they end
    # the wait loop below, the way to stop a server: "server stopped", status 0.
    received: list[int] = []
    starting = True

    def _stop(signum: int, frame: object) -> None:
        received.append(signum)
        if starting and len(received) == 1:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        try:
            server = start_server(model, log_path=log_path, timeout=timeout, **engine)
            starting = False
        except KeyboardInterrupt:
            if not received:  # not raised by _stop
                raise
        if server is not None and not received:
            click.echo(server.base_url)
            click.echo(f"ready: interests extract LOGS --server {server.base_url}", err=True)
            while server.alive() and not received:
                time.sleep(0.5)
    finally:
        starting = False  # from here on a signal only records itself: the stop below runs to the end
        if server is not None:
            server.stop()
        if server is not None or received:
            click.echo("server stopped", err=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if server is None:  # interrupted while starting
        raise SystemExit(130)
    if not received:
        raise click.ClickException(f"the server exited with code {server.process.returncode}")
