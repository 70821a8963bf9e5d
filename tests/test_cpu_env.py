"""CPU engine environment defaults: thread binding on small machines, never overriding the user."""

from __future__ import annotations

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
    from interests.serving import server_command

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
