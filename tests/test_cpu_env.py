"""CPU engine defaults: thread binding on small machines, never overriding the user; the dtype chosen from
the CPU's flags; vLLM's log level unless -v; the plain progress line of `interests extract`."""

from __future__ import annotations

from pathlib import Path

import pytest

from interests.llm import cpu_env


def test_small_machine_binds_every_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(cpu_env, "usable_cores", lambda: [0, 1])
    assert cpu_env.cpu_engine_env(3) == {
        "VLLM_CPU_KVCACHE_SPACE": "3",
        "VLLM_CPU_OMP_THREADS_BIND": "0,1",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    }


def test_large_machine_keeps_vllms_own_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(cpu_env, "usable_cores", lambda: list(range(32)))
    assert cpu_env.cpu_engine_env() == {"VLLM_CPU_KVCACHE_SPACE": "2"}


def test_user_settings_are_never_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "1")
    monkeypatch.setattr(cpu_env, "usable_cores", lambda: [0, 1])
    target = {"VLLM_CPU_KVCACHE_SPACE": "8"}
    cpu_env.apply_cpu_engine_env(target)
    assert target == {"VLLM_CPU_KVCACHE_SPACE": "8"}


def test_usable_cores_are_this_process_affinity() -> None:
    cores = cpu_env.usable_cores()
    assert cores and all(isinstance(c, int) for c in cores) and cores == sorted(set(cores))


@pytest.mark.parametrize(
    ("gpu", "requested", "eager"),
    [(False, None, True), (True, None, False), (True, True, True), (False, False, False)],
)
def test_enforce_eager_defaults_to_the_platform(
    monkeypatch: pytest.MonkeyPatch, gpu: bool, requested: bool | None, eager: bool
) -> None:
    monkeypatch.setattr(cpu_env, "gpu_available", lambda: gpu)
    assert cpu_env.enforce_eager(requested) is eager
    from interests.llm.launch import server_command

    cmd = server_command("m", served_name="m", host="h", port=1, max_model_len=9, enforce_eager=requested)
    assert ("--enforce-eager" in cmd) is eager


def test_cli_engine_options_reach_the_server_command() -> None:
    from click.testing import CliRunner
    from interests.cli import cli

    def flags(*args: str) -> list[str]:
        res = CliRunner().invoke(cli, ["serve", "--dry-run", "--port", "9", "--model", "/m", *args])
        assert res.exit_code == 0, res.output
        return res.output.split()

    assert "--enforce-eager" not in flags("--no-enforce-eager")
    assert "--enforce-eager" in flags("--enforce-eager")
    cmd = flags("-tp", "2")
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "2"


@pytest.mark.parametrize(
    ("flags", "dtype"),
    [
        ({"fpu", "sse4_2", "avx", "avx2", "fma"}, "float32"),  # AVX2 only: bf16 was 2.1x slower
        ({"avx2", "avx512f", "avx512_vnni"}, "float32"),  # AVX-512 without its bf16 instructions
        ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
        ({"avx2", "amx_tile", "amx_bf16"}, "bfloat16"),
        ({"fp", "asimd", "bf16"}, "bfloat16"),  # aarch64 Features
        ({"fp", "asimd"}, "float32"),
        (set(), "float32"),
    ],
)
def test_default_dtype_is_bf16_only_where_the_cpu_computes_it(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], dtype: str
) -> None:
    monkeypatch.setattr(cpu_env, "gpu_available", lambda: False)
    assert cpu_env.default_dtype(flags) == dtype


def test_default_dtype_on_a_gpu_is_vllms_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_env, "gpu_available", lambda: True)
    assert cpu_env.default_dtype({"avx2"}) == "auto"


def test_cpu_flags_read_x86_and_aarch64_cpuinfo(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\nCPU implementer\t: 0x41\n")
    assert cpu_env.cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_env.cpu_flags(str(arm)) == {"fp", "asimd", "bf16"}
    assert cpu_env.cpu_flags(str(tmp_path / "missing")) == set()


def test_default_dtype_reads_this_machines_cpuinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_env, "gpu_available", lambda: False)
    assert cpu_env.default_dtype() == cpu_env.default_dtype(cpu_env.cpu_flags())


def test_resolve_dtype_keeps_a_request_and_defaults_to_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_env, "gpu_available", lambda: False)
    monkeypatch.setattr(cpu_env, "cpu_flags", lambda: {"avx2"})
    assert cpu_env.resolve_dtype(None) == "float32"
    assert cpu_env.resolve_dtype("bfloat16") == "bfloat16"
    assert cpu_env.resolve_dtype("auto") == "auto"
    monkeypatch.setattr(cpu_env, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert cpu_env.resolve_dtype(None) == "bfloat16"


def test_the_backend_passes_the_resolved_dtype_to_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from interests.llm import vllm_local
    from interests.llm.vllm_local import VLLMBackend

    seen: dict[str, object] = {}
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=lambda **kw: seen.update(kw)))
    monkeypatch.setattr(vllm_local, "apply_cpu_engine_env", lambda *a: None)  # leave os.environ alone
    monkeypatch.setattr(cpu_env, "gpu_available", lambda: False)
    monkeypatch.setattr(cpu_env, "cpu_flags", lambda: {"avx2"})
    backend = VLLMBackend("/m")
    assert backend.dtype_used is None
    backend.start()
    assert seen["dtype"] == backend.dtype_used == "float32"
    backend = VLLMBackend("/m", dtype="bfloat16")
    backend.start()
    assert seen["dtype"] == backend.dtype_used == "bfloat16"


def test_cli_dtype_reaches_the_server_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner
    from interests.cli import cli

    monkeypatch.setattr(cpu_env, "gpu_available", lambda: False)
    monkeypatch.setattr(cpu_env, "cpu_flags", lambda: {"avx2"})

    def dtype(*args: str) -> str:
        res = CliRunner().invoke(cli, ["serve", "--dry-run", "--port", "9", "--model", "/m", *args])
        assert res.exit_code == 0, res.output
        cmd = res.output.split()
        return cmd[cmd.index("--dtype") + 1]

    assert dtype() == "float32"
    assert dtype("--dtype", "bfloat16") == "bfloat16"
    assert dtype("--dtype", "auto") == "auto"
    res = CliRunner().invoke(cli, ["serve", "--dry-run", "--dtype", "int8"])
    assert res.exit_code == 2 and "int8" in res.output


@pytest.mark.parametrize("command", ["extract", "serve"])
def test_extract_and_serve_help_show_dtype(command: str) -> None:
    from click.testing import CliRunner
    from interests.cli import cli

    res = CliRunner().invoke(cli, [command, "--help"])
    assert res.exit_code == 0, res.output
    assert "--dtype [auto|bfloat16|float32|float16]" in res.output
    assert "avx512_bf16/amx" in res.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        ((16, 24, 2, 16, 121.5), "extract: 16/24 users (2 errors), 7.9 users/min, ETA 1m01s"),
        ((16, 24, 1, 8, 60.0), "extract: 16/24 users (1 error), 8.0 users/min, ETA 1m00s"),  # 8 skipped
        ((24, 24, 0, 24, 30.0), "extract: 24/24 users (0 errors), 48.0 users/min, ETA 0s"),
        ((1, 1000, 0, 1, 45.0), "extract: 1/1000 users (0 errors), 1.3 users/min, ETA 12h29m15s"),
        ((8, 24, 0, 0, 0.0), "extract: 8/24 users (0 errors)"),  # only skipped users so far: no rate
    ],
)
def test_progress_line(args: tuple[int, int, int, int, float], line: str) -> None:
    from interests.cli.extract import progress_line

    assert progress_line(*args) == line


@pytest.mark.parametrize(("argv", "level"), [([], "ERROR"), (["-v"], None), (["--verbose"], None)])
def test_vllm_logs_are_quiet_unless_verbose(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], level: str | None
) -> None:
    import os

    from click.testing import CliRunner
    from interests.cli import cli

    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    res = CliRunner().invoke(cli, [*argv, "schema"])
    assert res.exit_code == 0, res.output
    assert os.environ.get("VLLM_LOGGING_LEVEL") == level


def test_a_users_vllm_logging_level_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from click.testing import CliRunner
    from interests.cli import cli

    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    assert CliRunner().invoke(cli, ["schema"]).exit_code == 0
    assert os.environ["VLLM_LOGGING_LEVEL"] == "DEBUG"
    target = {"PATH": "/bin"}
    cpu_env.quiet_vllm_logging(target)
    assert target == {"PATH": "/bin", "VLLM_LOGGING_LEVEL": "ERROR"}
