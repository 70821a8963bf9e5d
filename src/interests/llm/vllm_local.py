"""In-process vLLM: one engine, many users per call, JSON-schema structured outputs.

The same class runs the 135M embedded model on a laptop CPU and a 7B+ model
with tensor parallelism on GPUs: only the constructor arguments change.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import BackendError
from .base import GenRequest, GenResult, Messages
from .cpu_env import apply_cpu_engine_env, resolve_dtype, vllm_is_quiet
from .cpu_env import enforce_eager as resolve_eager
from .lifeline import engine_lifeline
from .weights import model_label, resolve_model

# guidance compiles every schema we send (xgrammar rejected some; see docs/models.md)
STRUCTURED_BACKEND = "guidance"


class VLLMBackend:
    """A lazily started ``vllm.LLM``.

    Scripts that create it must use the ``if __name__ == "__main__":`` guard,
    because vLLM starts its engine in a child process. That process (and the
    worker it starts) exits when this one dies, even by SIGKILL
    (:func:`~interests.llm.lifeline.engine_lifeline`).
    """

    name = "vllm"
    server: str | None = None

    def __init__(
        self,
        model: str | None = None,
        *,
        max_model_len: int = 4096,
        tensor_parallel_size: int = 1,
        kv_cache_gb: float = 2.0,
        enforce_eager: bool | None = None,
        dtype: str | None = None,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> None:
        self.model_arg = model
        self.model = model_label(model)
        self.max_model_len = max_model_len
        self.tensor_parallel_size = tensor_parallel_size
        self.kv_cache_gb = kv_cache_gb
        self.enforce_eager = enforce_eager
        self.dtype = dtype
        #: the dtype the engine was started with (``dtype`` or the platform's default), set by start()
        self.dtype_used: str | None = None
        self.enable_prefix_caching = enable_prefix_caching
        self.seed = seed
        self.engine_kwargs = engine_kwargs
        self._llm: Any = None
        self._tokenizer: Any = None
        self._path: str | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def path(self) -> str:
        if self._path is None:
            self._path = resolve_model(self.model_arg)
        return self._path

    def start(self) -> None:
        if self._llm is not None:
            return
        apply_cpu_engine_env(os.environ, self.kv_cache_gb)
        dtype: Any = resolve_dtype(self.dtype)  # a str; vLLM's annotation is a Literal of the names it knows
        try:
            from vllm import LLM
        except ImportError as exc:
            raise BackendError(
                "the in-process backend needs vLLM: pip install 'interests[cpu]' (CPU) "
                "or 'interests[gpu]' (GPU), or use --server URL"
            ) from exc
        try:
            with engine_lifeline():  # the engine processes exit when this process dies, even by SIGKILL
                self._llm = LLM(
                    model=self.path,
                    max_model_len=self.max_model_len,
                    tensor_parallel_size=self.tensor_parallel_size,
                    enforce_eager=resolve_eager(self.enforce_eager),
                    dtype=dtype,
                    enable_prefix_caching=self.enable_prefix_caching,
                    seed=self.seed,
                    structured_outputs_config={"backend": STRUCTURED_BACKEND, "disable_any_whitespace": True},
                    **{"use_tqdm_on_load": not vllm_is_quiet(), **self.engine_kwargs},
                )
        except Exception as exc:  # vLLM raises many kinds; the message says which model failed
            raise BackendError(f"vLLM could not load model {self.path!r}: {exc}") from exc
        self.dtype_used = dtype

    def close(self) -> None:
        if self._llm is not None:
            engine = getattr(self._llm, "llm_engine", None)
            shutdown = getattr(engine, "shutdown", None) or getattr(
                getattr(engine, "engine_core", None), "shutdown", None
            )
            if callable(shutdown):
                shutdown()
            self._llm = None

    def __enter__(self) -> VLLMBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work ----------------------------------------------------------------------
    def count_tokens(self, messages: Messages) -> int:
        if self._tokenizer is None:
            from .tokens import load_tokenizer

            self._tokenizer = load_tokenizer(self.path, local_only=False)  # the engine may fetch it too
        ids = self._tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        if not requests:
            return []
        self.start()
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [
            SamplingParams(
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                seed=r.seed if r.temperature > 0 else None,
                structured_outputs=StructuredOutputsParams(json=r.schema()),
            )
            for r in requests
        ]
        outputs = self._llm.chat([r.messages for r in requests], params, use_tqdm=False)
        results = []
        for r, out in zip(requests, outputs, strict=True):
            comp = out.outputs[0]
            results.append(
                GenResult(
                    key=r.key,
                    text=comp.text,
                    finish_reason=comp.finish_reason or "stop",
                    prompt_tokens=len(out.prompt_token_ids or []),
                    output_tokens=len(comp.token_ids),
                    cached_tokens=int(getattr(out, "num_cached_tokens", 0) or 0),
                )
            )
        return results


__all__ = ["VLLMBackend"]
