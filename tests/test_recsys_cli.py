"""CLI round trip on the example logs: train, recommend (table, JSON, explain, cold start), evaluate."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from interests.cli import cli


def test_train_recommend_evaluate_round_trip(example_logs_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    logs = [
        "--logs",
        str(example_logs_dir / "events.csv"),
        "--catalog",
        str(example_logs_dir / "catalog.jsonl"),
    ]
    model = tmp_path / "model"
    res = runner.invoke(cli, ["train", *logs, "-o", str(model), "--epochs", "5"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and (model / "model.safetensors").is_file()

    res = runner.invoke(cli, ["recommend", str(model), "--user", "u001", "-k", "4", "--json", "--explain"])
    assert res.exit_code == 0, res.output
    [out] = json.loads(res.output)  # always a list, even for one user
    assert out["user_id"] == "u001" and len(out["items"]) == 4
    seen = {
        line.split(",")[1]
        for line in (example_logs_dir / "events.csv").read_text().splitlines()
        if line.startswith("u001,")
    }
    assert not {r["item_id"] for r in out["items"]} & seen
    assert all(b["item_id"] in seen for r in out["items"] for b in r["because"])
    scores = [r["score"] for r in out["items"]]
    assert scores == sorted(scores, reverse=True)

    res = runner.invoke(cli, ["recommend", str(model), "--user", "u001", "--explain", "--diverse", "0.5"])
    assert res.exit_code == 0, res.output
    assert "because:" in res.output

    res = runner.invoke(
        cli, ["recommend", str(model), "--items", "i0001,i0002", "--text", "espresso", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)[0]["items"]) == 10

    res = runner.invoke(cli, ["recommend", str(model), "--user", "nobody"])
    assert (
        res.exit_code == 1 and "none of the 1 users could be served" in res.output and "--items" in res.output
    )

    res = runner.invoke(cli, ["recommend", str(tmp_path)])
    assert res.exit_code != 0 and "not a model folder" in res.output

    res = runner.invoke(
        cli, ["evaluate", *logs, "--seeds", "0", "--variants", "two-tower,two-tower-history", "--json"]
    )
    assert res.exit_code == 0, res.output
    table = json.loads(res.output.strip().splitlines()[-1])
    assert set(table) == {"all", "cold"}
    for seg in table.values():
        names = {"two-tower", "two-tower-history", "ease", "itemknn", "backbone", "popular", "sasrec"}
        assert names <= set(seg)
        for row in seg.values():
            assert {"recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "diversity@20"} <= set(row)
            assert all(0.0 <= row[k] <= 1.0 for k in ("recall@20", "ndcg@20", "coverage@20"))
    res = runner.invoke(
        cli, ["evaluate", *logs, "--seeds", "0", "--variants", "two-tower-history", "--no-sasrec", "--json"]
    )
    assert res.exit_code == 0, res.output
    quick = json.loads(res.output.strip().splitlines()[-1])
    assert "sasrec" not in quick["all"] and {"two-tower-history", "ease"} <= set(quick["all"])
    # the global time cut: the same models, other targets
    args = ["--seeds", "0", "--variants", "two-tower-history", "--no-sasrec", "--protocol", "time", "--json"]
    res = runner.invoke(cli, ["evaluate", *logs, *args])
    assert res.exit_code == 0, res.output
    timed = json.loads(res.output.strip().splitlines()[-1])
    assert set(timed["all"]) == set(quick["all"]) and timed["all"]["ease"] != quick["all"]["ease"]
