"""The wheel carries prompts/ and cli/: install it in a clean venv and use both."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    [whl] = dist.glob("interests-*.whl")
    return whl


def test_wheel_contains_prompts_cli_and_templates(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "interests/prompts/system.j2" in names and "interests/prompts/user.j2" in names
    assert "interests/cli/__init__.py" in names and "interests/cli/extract.py" in names
    assert "interests/py.typed" in names


def test_installed_wheel_runs_cli_and_renders_a_prompt(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True)
    # only what --help and rendering need; the heavy extras (vllm, torch) are not installed
    subprocess.run([*pip, "click", "jinja2", "pydantic", "rich"], check=True, capture_output=True)
    out = subprocess.run(
        [str(env_dir / "bin" / "interests"), "extract", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "--catalog" in out.stdout
    code = (
        "import interests, interests.prompting as p\n"
        "from interests.events import Event, UserHistory, Catalog, Item\n"
        "from interests.signals import compute_signals\n"
        "assert 'site-packages' in interests.__file__, interests.__file__\n"
        "h = UserHistory('u', [Event('u', 'i1', 1.6e9, 5.0)])\n"
        "c = Catalog({'i1': Item('i1', 'Alien (1979)', ['Sci-Fi'])})\n"
        "pr = p.render_prompt(h, compute_signals(h, c), c)\n"
        "print(pr.messages[1]['content'])\n"
    )
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "[i1] Alien (1979) | Sci-Fi | rated 5" in out.stdout
