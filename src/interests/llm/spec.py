"""What backend to build, as data: one picklable spec, one :meth:`BackendSpec.build`.

The command line, the SDK and the Ray actors all describe the LLM the same way
(the in-process vLLM engine on a model, a client of one or more
OpenAI-compatible servers, or the scripted fake) and build it in one place. The
spec holds no engine, so it travels to Ray actors, each of which builds its own
(actor ``i`` takes the ``i % len(servers)``-th server).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .base import Backend

Kind = Literal["engine", "server", "fake"]
KINDS = ("engine", "server", "fake")


@dataclass(frozen=True)
class BackendSpec:
    """How to build a backend: ``kind`` and the settings of that kind.

    ``engine``: :class:`~interests.llm.vllm_local.VLLMBackend` on ``model``
    (the embedded default when ``None``) with ``max_model_len`` (default
    4096), ``tensor_parallel_size``, ``enforce_eager``, ``dtype``; ``engine_kwargs``
    adds any other keyword of that class. ``server``: a
    :class:`~interests.llm.server.ServerBackend` of ``servers`` (one URL, or
    several for Ray actors to share) serving ``model`` (default: the first
    model the server lists), with ``api_key``, ``concurrency``, ``timeout``
    and ``max_model_len`` (default: what the server reports). ``fake``: the
    scripted :class:`~interests.llm.fake.FakeBackend` (its default script).
    """

    kind: Kind = "engine"
    model: str | None = None
    servers: tuple[str, ...] = ()
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 8
    timeout: float = 300.0
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    enforce_eager: bool | None = None
    dtype: str | None = None
    engine_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"backend kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if isinstance(self.servers, str):
            object.__setattr__(self, "servers", (self.servers,))
        if self.kind == "server" and not self.servers:
            raise ConfigError("a server backend needs a server URL")
        if self.kind != "server" and self.servers:
            raise ConfigError(f"servers are for the server backend, not {self.kind!r}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be above 0, not {self.timeout}")
        if self.tensor_parallel_size < 1:
            raise ConfigError(f"tensor_parallel_size must be at least 1, not {self.tensor_parallel_size}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ConfigError(f"max_model_len must be at least 1, not {self.max_model_len}")

    @classmethod
    def of(
        cls,
        *,
        model: str | None = None,
        server: str | Sequence[str] | None = None,
        api_key: str | None = None,
        served_model: str | None = None,
        **settings: Any,
    ) -> BackendSpec:
        """The spec of the command line's backend options: ``server`` (comma-separated URLs, or a
        list) makes a server spec serving ``served_model``, otherwise the engine on ``model``."""
        urls = server.split(",") if isinstance(server, str) else list(server or ())
        servers = tuple(u.strip() for u in urls if u.strip())
        if servers:
            for key in ("tensor_parallel_size", "enforce_eager", "dtype"):
                settings.pop(key, None)  # engine settings: not the server's
            return cls("server", served_model, servers, api_key=api_key, **settings)
        for key in ("concurrency", "timeout"):
            settings.pop(key, None)  # client settings: not the engine's
        return cls("engine", model, **settings)

    @property
    def gpus(self) -> int:
        """GPUs one backend needs on its own machine (the engine's tensor-parallel size)."""
        return self.tensor_parallel_size if self.kind == "engine" else 0

    def build(self, index: int = 0) -> Backend:
        """A new backend (the engine loads on its first use, or ``start()``); ``index`` picks the server."""
        if self.kind == "server":
            from .server import ServerBackend

            return ServerBackend(
                self.servers[index % len(self.servers)],
                api_key=self.api_key,
                model=self.model,
                concurrency=self.concurrency,
                timeout=self.timeout,
                max_model_len=self.max_model_len,
            )
        if self.kind == "fake":
            from .fake import FakeBackend

            return FakeBackend(model=self.model or "fake-model", max_model_len=self.max_model_len or 4096)
        from .vllm_local import VLLMBackend

        return VLLMBackend(
            self.model,
            max_model_len=self.max_model_len or 4096,
            tensor_parallel_size=self.tensor_parallel_size,
            enforce_eager=self.enforce_eager,
            dtype=self.dtype,
            **dict(self.engine_kwargs),
        )

    def __call__(self, index: int = 0) -> Backend:
        """:meth:`build`: a spec is also the backend factory Ray actors call with their index."""
        return self.build(index)


__all__ = ["BackendSpec"]
