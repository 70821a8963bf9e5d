"""A model's own tokenizer, loaded once per folder, and token counts of plain text.

The in-process backend counts its prompts with it (chat template applied);
``interests context`` counts a rendered profile with it (plain text, no
special tokens: the text is pasted into someone else's prompt). Nothing is
ever downloaded: a name is an embedded model (prepared on first use), a local
folder, or a hub name already in the local Hugging Face cache.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .weights import DEFAULT_MODEL, EMBEDDED, prepare_model


def tokenizer_path(model: str | None = None) -> str:
    """Where the tokenizer of ``model`` is: an embedded model's prepared folder, or the folder given."""
    if model is None or model in EMBEDDED:
        return str(prepare_model(model or DEFAULT_MODEL))
    path = Path(model).expanduser()
    if not path.exists() and model.startswith(("/", ".", "~")):
        raise ConfigError(f"tokenizer {model}: no such folder")
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"tokenizer {model}: not a folder (give a model or tokenizer folder)")
        return str(path.resolve())
    return model  # a hub name: only from the local cache (see load_tokenizer)


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str, *, local_only: bool = True) -> Any:
    """The Hugging Face tokenizer in ``path`` (a folder or a hub name), loaded once.

    ``local_only`` (the default): a hub name must already be in the local cache.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"no tokenizer at {path!r} (a folder with tokenizer.json / tokenizer_config.json, "
            f"an embedded model name ({', '.join(EMBEDDED)}), or a hub name already downloaded): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


class TextTokens:
    """Counts tokens of plain text with the tokenizer of ``model`` (default: the embedded model)."""

    def __init__(self, model: str | None = None) -> None:
        self.name = model or DEFAULT_MODEL
        self.tokenizer = load_tokenizer(tokenizer_path(model))

    def __call__(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))


__all__ = ["TextTokens", "load_tokenizer", "tokenizer_path"]
