"""``interests train`` / ``recommend`` / ``evaluate``: thin wrappers over :mod:`interests.recsys`."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import (
    all_logs,
    logs_arguments,
    note,
    ray_option,
    read_logs_for,
    sdk_command,
    split_options,
    user_list,
    users_option,
)


def _int_list(value: str, name: str | None) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; anything else is a usage error naming the option."""
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. 0,1,2")
    return out


@click.command()
@logs_arguments
@click.option(
    "--profiles",
    type=click.Path(exists=True, dir_okay=False),
    help="profiles.jsonl written by `interests extract`.",
)
@click.option(
    "--taxonomy",
    type=click.Path(exists=True, file_okay=False),
    help="Taxonomy folder written by `interests taxonomy build`.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default="model",
    show_default=True,
    help="Model folder to write.",
)
@click.option(
    "--epochs", type=int, default=40, show_default=True, help="Most epochs (early stopping on the holdout)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--holdout/--no-holdout",
    default=True,
    show_default=True,
    help="Pick epochs and fusion on each user's valid events (docs/benchmarks.md split), then refit on all.",
)
@click.option("--backbone/--no-backbone", default=True, show_default=True, help="Fuse an item-item backbone.")
@click.option(
    "--backbone-kind",
    type=click.Choice(["auto", "ease", "itemknn", "sasrec"]),
    default="auto",
    show_default=True,
    help="The backbone: EASE or ItemKNN over the recency-weighted history, or SASRec over the item "
    "sequence; auto: chosen on the holdout with its parameter, decay or epochs (EASE without --holdout).",
)
@click.option(
    "--sasrec/--no-sasrec",
    default=True,
    show_default=True,
    help="Let --backbone-kind auto try SASRec too (most of the training time on a CPU).",
)
@click.option(
    "--select-inputs/--no-select-inputs",
    default=True,
    show_default=True,
    help="With --holdout, keep each user-side input group (history, item text, profile, taxonomy, "
    "L3) only when it gains valid NDCG@20 beyond 2 standard errors.",
)
@click.option(
    "--loss", type=click.Choice(["sampled_softmax", "bce"]), default="sampled_softmax", show_default=True
)
@click.option(
    "--encoder",
    default="hashing",
    show_default=True,
    help="Text encoder for item and profile texts (see interests.encode).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Train data-parallel on this many Ray Train workers (DDP; gloo on CPU, NCCL with --worker-gpu). "
    "Needs interests[ray].",
)
@ray_option("With --workers, the Ray cluster to train on")
@click.option(
    "--worker-cpus",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="CPUs each training worker asks for (and its torch threads).",
)
@click.option("--worker-gpu", is_flag=True, help="One GPU for each training worker.")
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False),
    default=None,
    help="With --workers, keep each epoch's checkpoint here (shared storage on a multi-node cluster); "
    "the same command again resumes a run that died [default: a temporary folder].",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was trained as JSON on stdout.")
@sdk_command
def train(
    logs: tuple[str, ...],
    logs_option: tuple[str, ...],
    profiles: str | None,
    taxonomy: str | None,
    output: str,
    epochs: int,
    seed: int,
    holdout: bool,
    backbone: bool,
    backbone_kind: str,
    sasrec: bool,
    select_inputs: bool,
    loss: str,
    encoder: str,
    workers: int | None,
    ray_address: str | None,
    worker_cpus: float,
    worker_gpu: bool,
    checkpoints: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Train the two-tower recommender from LOGS (files, folders or -), profiles and a taxonomy."""
    from interests.errors import ConfigError
    from interests.pipeline import train as run
    from interests.profile.store import read_profiles

    distributed = None
    if workers is None:
        if ray_address is not None or worker_gpu or checkpoints is not None or worker_cpus != 1.0:
            raise click.UsageError("--ray, --worker-cpus, --worker-gpu and --checkpoints go with --workers")
    else:
        from interests.scale.ray_train import RayTraining, require_ray_train

        require_ray_train()  # fail before reading the logs
        distributed = RayTraining(
            workers=workers,
            address=ray_address,
            cpus_per_worker=worker_cpus,
            use_gpu=worker_gpu,
            checkpoints=checkpoints,
        )
    from interests.recsys.forget_rows import forgotten_in

    replaced = forgotten_in(output)  # a model users were forgotten from: this retrain supersedes it
    log_opts, _ = split_options(options)
    paths = all_logs(logs, logs_option)
    profs = (
        read_profiles(profiles) if profiles else None
    )  # a bad profiles file fails before the logs are read
    if profiles and not profs:
        raise ConfigError(
            f"{profiles} holds no profiles: give the profiles.jsonl written by `interests extract`"
        )
    parsed = read_logs_for(paths, output, **log_opts)
    model = run(
        parsed,
        profiles=profs,
        taxonomy=taxonomy,
        output=output,
        holdout=holdout,
        epochs=epochs,
        seed=seed,
        backbone=backbone,
        backbone_kind=backbone_kind,
        backbone_sasrec=sasrec,
        select_inputs=select_inputs,
        loss=loss,
        encoder=encoder,
        distributed=distributed,
    )
    tl = model.train_log
    valid = f", holdout NDCG@20 {tl.best_valid:.4f}" if tl.best_valid is not None else ""
    bb = model.state.backbone.describe() if model.state.backbone is not None else "none"
    note(
        f"trained on {model.config.n_items} items, {len(parsed.histories)} users: "
        f"{tl.epochs} epochs in {tl.seconds:.1f}s{valid}, backbone {bb}, fusion {model.config.fusion}; "
        f"wrote {output}/"
    )
    if replaced:
        note(
            f"{output} was a model {replaced.get('users', 0)} user(s) had been forgotten from "
            "(`interests forget`); this retrain has no trace of them as long as the logs and "
            "profiles no longer hold them"
        )
    ic = model.input_choice
    if ic:
        why = ", ".join(
            f"{g} {'kept' if r['kept'] else 'dropped'} (gain {r['gain']:+.4f}, se {r['se']:.4f})"
            for g, r in ic["groups"].items()
        )
        kept = ", ".join(ic["chosen"])
        note(f"inputs chosen on valid (full model {ic['full_ndcg@20']:.4f}): {why}; kept {kept}")
    if as_json:
        summary = {
            "output": output,
            "users": len(parsed.histories),
            "items": model.config.n_items,
            "profiles": len(profs or []),
            "profiles_matched": sum(1 for p in profs or [] if p.user_id in parsed.histories),
            "epochs": tl.epochs,
            "best_epoch": tl.best_epoch,
            "holdout_ndcg@20": tl.best_valid,
            "backbone": model.state.backbone.describe() if model.state.backbone is not None else None,
            "fusion": model.config.fusion,
            "inputs": model.input_choice,
            "seconds": tl.seconds,
            "workers": tl.workers,
            "epoch_seconds": tl.epoch_seconds,
        }
        click.echo(json.dumps(summary, indent=2))


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@users_option
@click.option("--items", help="Cold start: comma-separated item ids the new user interacted with.")
@click.option("--text", help="Cold start: a short description of the new user's interests.")
@click.option("-k", "--k", type=click.IntRange(min=1), default=10, show_default=True, help="How many items.")
@click.option("--explain", is_flag=True, help="Show what drove each score (history items, interest nodes).")
@click.option(
    "--diverse",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Re-rank across L1 domains (0 off .. 1 strongest).",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="NAME|ID",
    help="Steer: only items of this domain (taxonomy domain, else catalogue category); repeat for several.",
)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    metavar="NAME|ID",
    help="Steer: only items of this taxonomy topic (or catalogue category); repeat for several.",
)
@click.option(
    "--avoid",
    multiple=True,
    metavar="NAME|ID",
    help="Steer: no items of this domain, topic or category; repeat for several.",
)
@click.option(
    "--mix",
    metavar="NAME=SHARE,...",
    help='Steer: shares of the list per node, e.g. "jazz=0.6,sci-fi=0.4" (or 60%,40%).',
)
@click.option(
    "--explore",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Give the last N slots to domains the user has not touched (from domain transitions).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list, one {user_id, items} object a user."
)
@sdk_command
def recommend(
    model_dir: str,
    user: tuple[str, ...],
    items: str | None,
    text: str | None,
    k: int,
    explain: bool,
    diverse: float,
    domains: tuple[str, ...],
    topics: tuple[str, ...],
    avoid: tuple[str, ...],
    mix: str | None,
    explore: int,
    as_json: bool,
) -> None:
    """Recommend items for users of a trained MODEL_DIR, with reasons; steer it by nodes of the
    hierarchy (--domain, --topic, --avoid, --mix) or open new domains (--explore)."""
    from interests.errors import ConfigError
    from interests.pipeline import recommend as run
    from interests.recsys.explain import reason_lines
    from interests.recsys.forget_rows import forgotten_note

    marked = forgotten_note(model_dir)
    if marked:
        note(marked)
    from interests.recsys.recommender import TwoTower

    model = TwoTower.load(model_dir)
    seen = [i.strip() for i in (items or "").split(",") if i.strip()]
    known_items = model.known.item_index
    bad_items = [i for i in seen if i not in known_items]
    if bad_items:
        raise ConfigError(
            f"unknown item id{'s' if len(bad_items) > 1 else ''} in --items: {', '.join(bad_items[:10])} "
            f"(not in {model_dir}'s catalogue); give item ids the model was trained on"
        )
    users = user_list(user) or []
    known_users = model.known.user_index()
    unknown = [u for u in users if u not in known_users]
    if unknown:
        click.echo(
            f"unknown user{'s' if len(unknown) > 1 else ''} (not in {model_dir}'s training logs), "
            f"skipped: {', '.join(unknown[:10])}{', ...' if len(unknown) > 10 else ''}; "
            "for a new user give --items ITEM,... and/or --text TEXT",
            err=True,
        )
        users = [u for u in users if u in known_users]
        if not users and not seen and not text:
            raise ConfigError(
                f"none of the {len(unknown)} users could be served: they are not in {model_dir}'s "
                "training logs (for a new user give --items ITEM,... and/or --text TEXT)"
            )
    out = run(
        model,
        users,
        k=k,
        explain=explain,
        diverse=diverse,
        items=seen,
        text=text,
        domains=domains,
        topics=topics,
        avoid=avoid,
        mix=mix,
        explore=explore,
    )
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))  # always a list, one object a user
        return
    for block in out:
        click.echo(f"user {block['user_id']}")
        for n, rec in enumerate(block["items"], 1):
            where = ""
            if not explain:  # with --explain the reason lines say it
                where = f"  ({rec['source']}: {rec['node']})" if rec.get("node") else f"  ({rec['source']})"
            click.echo(
                f"{n:>3}. {rec['title'] or rec['item_id']}  [{rec['item_id']}]  {rec['score']:.3f}{where}"
            )
            for line in reason_lines(rec):
                click.echo(f"       {line}")


@click.command()
@logs_arguments
@click.option(
    "--profiles-dir",
    type=click.Path(file_okay=False),
    help="Folder of per-split profiles (train/, train+valid/, cold-valid/, cold-test/ profiles.jsonl).",
)
@click.option(
    "--extract", is_flag=True, help="Extract missing per-split profiles into --profiles-dir first (slow)."
)
@click.option(
    "--seeds",
    default="0,1,2",
    show_default=True,
    callback=lambda ctx, param, value: _int_list(value, param.name),
    help="Seeds of the trained models (comma-separated integers).",
)
@click.option("--variants", default=None, help="Two-tower variants (comma-separated) [default: all].")
@click.option(
    "--sasrec/--no-sasrec",
    default=True,
    show_default=True,
    help="Include the SASRec baseline (minutes per epoch on a CPU for 100k events).",
)
@click.option(
    "--protocol",
    type=click.Choice(["last", "time"]),
    default="last",
    show_default=True,
    help="last: each user's last events are test; time: one global cut time, "
    "test = each user's first event after it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object {segment: {model: metrics}}.")
@sdk_command
def evaluate(
    logs: tuple[str, ...],
    logs_option: tuple[str, ...],
    profiles_dir: str | None,
    extract: bool,
    seeds: list[int],
    variants: str | None,
    sasrec: bool,
    protocol: str,
    as_json: bool,
    **options: Any,
) -> None:
    """Evaluate the two-tower against SASRec, EASE, ItemKNN and popularity on LOGS (the protocol of
    docs/benchmarks.md)."""
    from interests.errors import ConfigError
    from interests.pipeline import cached_profiles, hashing_taxonomy
    from interests.recsys.evaluate import VARIANTS
    from interests.recsys.evaluate import evaluate as run

    log_opts, _ = split_options(options)
    parsed = read_logs_for(all_logs(logs, logs_option), profiles_dir or "out/evaluate", **log_opts)
    chosen = VARIANTS
    if variants:
        unknown = [v for v in variants.split(",") if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        chosen = {v: VARIANTS[v] for v in variants.split(",")}
    if extract and not profiles_dir:
        raise ConfigError("--extract needs --profiles-dir to write the profiles into")
    prof = cached_profiles(profiles_dir, extract=extract, catalog=parsed.catalog) if profiles_dir else None
    no_sasrec: dict[str, Any] = {} if sasrec else {"sasrec_grid": None}
    res = run(
        parsed,
        seeds=seeds,
        variants=chosen,
        profiles=prof,
        taxonomy=hashing_taxonomy(parsed.catalog) if prof else None,
        protocol=protocol,
        **no_sasrec,
    )
    if as_json:
        click.echo(json.dumps(res.table))
        return
    cols = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "diversity@20"]
    for seg, rows in res.table.items():
        click.echo(f"segment {seg}")
        click.echo(f"{'model':<24}" + "".join(f"{c:>14}" for c in cols))
        for name, row in rows.items():
            click.echo(f"{name:<24}" + "".join(f"{row.get(c, float('nan')):>14.4f}" for c in cols))
