"""``interests api``: a thin wrapper over :func:`interests.api.create_app` and :func:`interests.api.serve`."""

from __future__ import annotations

from pathlib import Path

import click

from .common import note, sdk_command


def default_events_log(profiles: str) -> Path:
    """``out/profiles.jsonl`` -> ``out/profiles.events.jsonl``."""
    from interests.profile.extract import sibling_path

    return sibling_path(profiles, "events")


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
) -> None:
    """Serve recommendations, profiles and event fold-in over HTTP for a trained MODEL_DIR.

    \b
    interests api out/model --profiles out/profiles.jsonl --catalog items.jsonl
    """
    from interests.api import check_bind, create_app, serve

    check_bind(host, api_key)  # before the slow part
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
    app = create_app(
        TwoTower.load(model_dir),
        read_profiles(profiles),
        catalog=cat,
        events_log=log,
        groups=ItemGroups.load(groups_file) if groups_file.is_file() else None,
        api_key=api_key,
        queue_size=queue_size,
        max_body_bytes=max_body_bytes,
        max_events=max_events,
    )
    state = app.state.interests
    note(
        f"interests api: {state.store.n_users} users, {state.model.config.n_items} items, events log {log}; "
        f"http://{host}:{port}/docs"
    )
    serve(app, host, port)
