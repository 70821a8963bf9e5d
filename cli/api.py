"""``interests api``: a thin wrapper over :func:`interests.api.create_app` and :func:`interests.api.serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import click

from .common import backend_options, note, sdk_command, weight_shift_option

F = TypeVar("F")


def default_events_log(profiles: str) -> Path:
    """``out/profiles.jsonl`` -> ``out/profiles.events.jsonl``."""
    from interests.profile.extract import sibling_path

    return sibling_path(profiles, "events")


def llm_options(func: F) -> F:
    """The :func:`~cli.common.backend_options` of ``extract`` and ``update``: the LLM of profile refreshes.

    The same options (click's ``Option`` objects that decorator makes), with two
    changes: ``--model`` says that without it (or ``--server``) no LLM is used,
    and the server's key is ``--server-api-key`` [env: INTERESTS_SERVER_API_KEY],
    because ``--api-key`` is the service's own key, never to be sent to an LLM
    server.
    """
    reused: list[click.Parameter] = backend_options(lambda **kw: None).__click_params__  # type: ignore[attr-defined]
    params: list[click.Parameter] = getattr(func, "__click_params__", [])
    for p in reused:  # in the order the decorators added them, as click.option does
        if p.name == "api_key":
            p = click.Option(
                ["--server-api-key", "server_api_key"],
                envvar="INTERESTS_SERVER_API_KEY",
                help="API key for --server [env: INTERESTS_SERVER_API_KEY]; --api-key is this service's.",
            )
        elif p.name == "model":
            p.help = (
                "LLM that writes new words when a refreshed user's hierarchy changed: an embedded model "
                "name (smollm2-135m), a model folder, or a model name vLLM can load "
                "[default: none, profile refreshes recompute statistics only]."
            )
        params.append(p)
    setattr(func, "__click_params__", params)  # noqa: B010
    return func


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--profiles",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="profiles.jsonl written by `interests extract`.",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True),
    help="Item catalogue, for profile refreshes (categories name the interests).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on."
)
@click.option(
    "--api-key",
    envvar="INTERESTS_API_KEY",
    help="Key every request but /healthz must send (Authorization: Bearer KEY or X-API-Key: KEY); "
    "required for a non-loopback --host [env: INTERESTS_API_KEY].",
)
@click.option(
    "--events-log",
    type=click.Path(dir_okay=False),
    help="JSON Lines file posted events are appended to and replayed from "
    "[default: <profiles stem>.events.jsonl next to --profiles].",
)
@click.option(
    "--queue-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Users waiting for a profile refresh; when full, users are marked stale (refresh deferred).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    help="Largest request body (413 above it).",
)
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most events in one POST /events (413 above it).",
)
@llm_options
@click.option(
    "--refresh",
    is_flag=True,
    help="With --model/--server: new words for every refreshed user, even where the groups did not change.",
)
@weight_shift_option("With --model/--server: ")
@sdk_command
def api(
    model_dir: str,
    profiles: str,
    catalog: str | None,
    host: str,
    port: int,
    api_key: str | None,
    events_log: str | None,
    queue_size: int,
    max_body_bytes: int,
    max_events: int,
    refresh: bool,
    weight_shift: float,
    server_api_key: str | None,
    **backend_opts: Any,
) -> None:
    """Serve recommendations, profiles and event fold-in over HTTP for a trained MODEL_DIR.

    Profiles of users with new events are refreshed in the background: exact
    statistics always; with --model or --server, new words from that LLM for
    users whose groups changed (the rule of `interests update`).

    \b
    interests api out/model --profiles out/profiles.jsonl --catalog items.jsonl
    interests api out/model --profiles out/profiles.jsonl --catalog items.jsonl \\
        --server http://127.0.0.1:8001/v1
    """
    from interests.api import check_bind, create_app, llm_refresher, serve
    from interests.llm.spec import BackendSpec

    check_bind(host, api_key)  # before the slow part
    llm = backend_opts["model"] or backend_opts["server"]
    if refresh and not llm:
        raise click.UsageError("--refresh asks an LLM for new words: give --model or --server")
    from interests.profile.store import read_profiles
    from interests.recsys import TwoTower

    cat = None
    if catalog:
        from interests.ingest import read_catalog

        cat = read_catalog(catalog)
    log = Path(events_log) if events_log else default_events_log(profiles)
    from interests.profile.extract import sibling_path
    from interests.profile.item_groups import ItemGroups

    groups_file = sibling_path(profiles, "groups", ".json")  # how extract grouped the items
    refresher = None
    if llm:  # made in the refresh thread the first time a user needs words
        refresher = llm_refresher(
            BackendSpec.of(api_key=server_api_key, **backend_opts).build,
            refresh=refresh,
            weight_shift=weight_shift,
        )
    from interests.recsys.forget_rows import forgotten_note

    model = TwoTower.load(model_dir)
    marked = forgotten_note(model)
    if marked:
        note(marked)
    siblings = [sibling_path(profiles, kind) for kind in ("history", "errors", "update", "quarantine")]
    app = create_app(
        model,
        read_profiles(profiles),
        catalog=cat,
        events_log=log,
        groups=ItemGroups.load(groups_file) if groups_file.is_file() else None,
        refresher=refresher,
        api_key=api_key,
        queue_size=queue_size,
        max_body_bytes=max_body_bytes,
        max_events=max_events,
        forget_paths=[profiles, *(p for p in siblings if p.exists()), model_dir],  # DELETE /users/{id}
    )
    state = app.state.interests
    words = f"new words from {llm} where the groups changed" if llm else "statistics only (no LLM)"
    note(
        f"interests api: {state.store.n_users} users, {state.model.config.n_items} items, events log {log}; "
        f"profile refreshes: {words}; http://{host}:{port}/docs"
    )
    serve(app, host, port)
