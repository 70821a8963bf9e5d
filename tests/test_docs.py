"""Every ```python block in README.md and docs/*.md runs and passes.

Each block runs in a fresh interpreter (this test's Python, normally the
project's .venv) from the repository root, as ``__main__``, with a 120 s
timeout. Blocks that need the real engine or a server are not plain
```python: they are ```bash, or ```python no-run (those are only compiled).
A block that reads ``../shared/data`` is skipped when that folder is absent.
Temporary files a block makes go to the test's own temporary folder.

A second test checks that docs/cli.md holds every option of every command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TIMEOUT_S = 600  # generous: shared CI machines are slow, a hang still fails
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
RUNNER = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


def _pages() -> list[Path]:
    return [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if p.is_file()]


def python_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line of the opening fence, info string, code) of each python block, in order."""
    blocks: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, info = m["fence"], len(m["indent"]), m["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = FENCE.match(lines[j])
            closes = close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence)
            if close and closes and not close["info"].strip():
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        lang = info.split()[0].lower() if info else ""
        if lang in ("python", "py", "python3"):
            blocks.append((i + 1, info, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def _cases() -> list[Any]:
    cases: list[Any] = []
    for page in _pages():
        rel = page.relative_to(ROOT).as_posix()
        for n, (line, info, code) in enumerate(python_blocks(page.read_text(encoding="utf-8"))):
            cases.append(pytest.param(rel, line, info, code, id=f"{rel}#{n}-L{line}"))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("page", "line", "info", "code"), CASES)
def test_python_block_runs(page: str, line: int, info: str, code: str, tmp_path: Path) -> None:
    if "no-run" in info:
        compile(code, f"{page}:{line}", "exec")  # shown, not run: it must at least be valid Python
        pytest.skip("no-run block (needs the engine or a server): compiled only")
    if "shared/data" in code and not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    script = tmp_path / f"{Path(page).stem}_L{line}.py"
    script.write_text(code, encoding="utf-8")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(script)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            # Ray's sockets live under its temp dir, whose path must stay under 108 bytes
            env={**os.environ, "TMPDIR": str(tmp_path), "RAY_TMPDIR": tempfile.gettempdir()},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{page}, block at line {line}: still running after {TIMEOUT_S}s")
    assert proc.returncode == 0, (
        f"{page}, block at line {line} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def test_the_block_finder_sees_fences_and_info_strings() -> None:
    text = "\n".join(
        [
            "```python",
            "a = 1",
            "```",
            "```bash",
            "echo no",
            "```",
            "````python no-run",
            "```",
            "b = 2",
            "````",
            "  ```py",
            "  c = 3",
            "  ```",
        ]
    )
    found = python_blocks(text)
    assert [(line, info) for line, info, _ in found] == [(1, "python"), (7, "python no-run"), (11, "py")]
    assert found[1][2] == "```\nb = 2\n" and found[2][2] == "c = 3\n"


def test_the_docs_have_python_blocks() -> None:
    infos = [str(c.values[2]) for c in CASES]
    assert any("no-run" not in info for info in infos), "no runnable python block found"


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:  # a command still being written is not loadable yet
                found += _commands(sub, f"{path} {name}")
    return found


def cli_md_from_help(page: str) -> str:
    """``page`` with every fenced block that starts ``Usage: interests X [`` replaced by X's --help."""
    from click.testing import CliRunner
    from interests.cli import cli

    def current(m: re.Match[str]) -> str:
        fence, body = m.group(1), m.group(2)
        head = re.match(r"Usage: (interests(?: [a-z-]+)*) \[", body.splitlines()[0])
        if not head:
            return m.group(0)
        args = head.group(1).split()[1:]
        res = CliRunner().invoke(cli, [*args, "--help"], prog_name="interests", terminal_width=80)
        return f"{fence}\n{res.stdout.rstrip()}\n```"

    return re.sub(r"(```(?:text)?)\n(Usage: .*?)\n```", current, page, flags=re.S)


def test_cli_md_help_blocks_are_the_current_help() -> None:
    """docs/cli.md shows each command's --help as it is: regenerate with `python tests/test_docs.py`."""
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    fresh = cli_md_from_help(page)
    if fresh != page:
        import difflib

        diff = "".join(difflib.unified_diff(page.splitlines(True), fresh.splitlines(True), n=1))
        raise AssertionError(
            f"docs/cli.md is not the current --help; run `python tests/test_docs.py`:\n{diff[:4000]}"
        )


def test_cli_md_lists_every_option_of_every_command() -> None:
    """docs/cli.md is the commands' --help output: a new option must show up there."""
    from interests.cli import cli

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = []
    for path, command in _commands(cli, "interests"):
        if f"Usage: {path} " not in page and path != "interests":
            missing.append(f"`{path} --help` output")
            continue
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("--") and opt not in page:
                    missing.append(f"{opt} of `{path}`")
    assert not missing, "docs/cli.md lacks " + ", ".join(missing) + ": paste the commands' --help into it"


if __name__ == "__main__":  # rewrite docs/cli.md's help blocks from the commands' --help
    cli_md = ROOT / "docs" / "cli.md"
    cli_md.write_text(cli_md_from_help(cli_md.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {cli_md}")
