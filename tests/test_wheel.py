"""The wheel carries prompts/ and cli/: install it in a clean venv and use both."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: packages of the source tree that are fixtures of tests, examples and benchmarks, not shipped
SOURCE_ONLY = ["interests/synthetic"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # from a copy of the tracked files: a stale build/ folder of the checkout cannot leak into the wheel
    src = tmp_path_factory.mktemp("src")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    )
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
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
            str(src),
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
    # packages are found, not listed: every package of the source tree is in the wheel, but the
    # fixtures of tests, examples and benchmarks (setup.py's SOURCE_ONLY)
    src = ROOT / "src" / "interests"
    packages = {p.parent.relative_to(src.parent).as_posix() for p in src.rglob("__init__.py")}
    assert {"interests/profile", "interests/llm", "interests/recsys", "interests/synthetic"} <= packages
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names and p not in SOURCE_ONLY)
    assert not missing, f"packages left out of the wheel: {missing}"
    # code used only by the tests, examples and benchmarks stays out of it
    assert not any(n.endswith("browser.py") for n in names)
    shipped = sorted(n for n in names if n.startswith(tuple(f"{p}/" for p in SOURCE_ONLY)))
    assert not shipped, f"test fixtures in the wheel: {shipped}"
    # and nothing that is shipped imports them
    for n in (n for n in names if n.endswith(".py")):
        text = zipfile.ZipFile(wheel).read(n).decode("utf-8")
        assert not any(f"{p.replace('/', '.')}" in text for p in SOURCE_ONLY), n


def test_installed_wheel_runs_cli_and_renders_a_prompt(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True)
    # only what --help and rendering need; the heavy extras (vllm, torch) are not installed
    subprocess.run([*pip, "click", "jinja2", "pydantic", "rich", "numpy"], check=True, capture_output=True)
    out = subprocess.run(
        [str(env_dir / "bin" / "interests"), "extract", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "--catalog" in out.stdout
    code = (
        "import interests, interests.profile.prompting as p\n"
        "from interests.events import Event, UserHistory, Catalog, Item\n"
        "from interests.profile.signals import compute_signals\n"
        "assert 'site-packages' in interests.__file__, interests.__file__\n"
        "h = UserHistory('u', [Event('u', 'i1', 1.6e9, 5.0)])\n"
        "c = Catalog({'i1': Item('i1', 'Alien (1979)', ['Sci-Fi'])})\n"
        "pr = p.render_prompt(h, compute_signals(h, c), c)\n"
        "print(pr.messages[1]['content'])\n"
    )
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "[i1] Alien (1979) | Sci-Fi | rated 5" in out.stdout
    # the fixtures are not installed (a checkout's editable install has them)
    out = subprocess.run([str(py), "-c", "import interests.synthetic"], cwd=tmp_path, capture_output=True)
    assert out.returncode != 0 and b"No module named 'interests.synthetic'" in out.stderr
