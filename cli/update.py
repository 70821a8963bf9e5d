"""``interests update``: bring profiles up to date with new events (the model only where words are needed)."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import (
    backend_options,
    batch_size_option,
    errors_option,
    exit_on_errors,
    half_life_option,
    log_options,
    note,
    read_logs_for,
    sdk_command,
    split_options,
    user_list,
    users_option,
    weight_shift_option,
)


@click.command()
@click.argument("logs", nargs=-1, required=True)
@click.option(
    "--profiles",
    type=click.Path(dir_okay=False),
    default="out/profiles.jsonl",
    show_default=True,
    help="profiles.jsonl to update in place (replaced versions go to <profiles>.history.jsonl).",
)
@log_options
@errors_option
@users_option
@click.option(
    "--refresh", is_flag=True, help="New words for every changed user, even where the groups did not change."
)
@click.option(
    "--llm/--no-llm",
    default=True,
    show_default=True,
    help="--no-llm: never call a model; new groups and new users get the data's own labels.",
)
@weight_shift_option()
@click.option("--retry-errors", is_flag=True, help="Try again the users that have only an error record.")
@click.option(
    "--taxonomy",
    "taxonomy_dir",
    type=click.Path(file_okay=False, exists=True),
    help="The shared taxonomy the profiles were grouped by (extract --taxonomy).",
)
@half_life_option
@backend_options
@batch_size_option
@click.option("--json", "as_json", is_flag=True, help="Print the run's counts as JSON on stdout.")
@sdk_command
def update(
    logs: tuple[str, ...],
    profiles: str,
    errors: str | None,
    user: tuple[str, ...],
    refresh: bool,
    llm: bool,
    weight_shift: float,
    retry_errors: bool,
    taxonomy_dir: str | None,
    batch_size: int,
    as_json: bool,
    half_life_days: float | None,
    **options: Any,
) -> None:
    """Update the profiles of the users whose events changed in LOGS (the whole log again, or new files).

    Exact statistics (items, weights, sentiment, trends, time patterns) are
    recomputed for every changed user; the model is called only for new users
    and users whose groups changed (a domain or topic appeared or went, or a
    domain's share moved by --weight-shift). Unchanged users are not touched.
    """
    from interests.llm.spec import BackendSpec
    from interests.profile.update import update_profiles

    selected = user_list(user)
    log_opts, backend_opts = split_options(options)
    parsed = read_logs_for(logs, profiles, users=selected, **log_opts)
    taxonomy = None
    if taxonomy_dir:
        from interests.taxonomy import Taxonomy

        taxonomy = Taxonomy.load(taxonomy_dir)

    def progress(res: Any, k: int) -> None:
        done = res.profiles + res.errors
        todo = res.exact + res.llm + res.new
        note(f"update: {done}/{todo} changed users ({res.errors} errors)")

    res = update_profiles(
        parsed,
        profiles=profiles,
        errors=errors,
        backend=BackendSpec.of(**backend_opts).build,
        llm=llm,
        users=selected,
        refresh=refresh,
        weight_shift=weight_shift,
        retry_errors=retry_errors,
        taxonomy=taxonomy,
        batch_size=batch_size,
        tz=log_opts["tz"],
        on_batch=progress,
        half_life_days=half_life_days,
    )
    why = ", ".join(f"{n} {r}" for r, n in sorted(res.reasons.items(), key=lambda kv: -kv[1])[:3])
    note(
        f"users: {res.users_seen} in the logs, {res.unchanged} unchanged, {res.exact} updated without "
        f"the model, {res.llm} with new words" + (f" ({why})" if why else "") + f", {res.new} new, "
        f"{res.errors} errors; time {res.seconds:.1f}s\n"
        f"profiles -> {res.output}\nreplaced versions -> {res.history_path}"
        + (f"\nerrors -> {res.errors_path}" if res.errors else "")
    )
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    exit_on_errors(res.users_with_errors, res.errors_path)
