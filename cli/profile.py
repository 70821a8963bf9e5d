"""``interests profile``: a user's profile now, or the version that held at a date."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import sdk_command


@click.command()
@click.argument("user")
@click.option(
    "--profiles",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default="out/profiles.jsonl",
    show_default=True,
    help="profiles.jsonl (its replaced versions are read from <profiles>.history.jsonl).",
)
@click.option(
    "--at",
    "at",
    default=None,
    metavar="DATE",
    help="The version that held at DATE (2023-05-01: the end of that day, UTC; or 2023-05-01T12:00:00Z) "
    "[default: the current one].",
)
@click.option(
    "--by",
    type=click.Choice(["event", "written"]),
    default="event",
    show_default=True,
    help="Read --at as event time of the data (what the user liked then) or as wall time written.",
)
@click.option("--versions", "list_versions", is_flag=True, help="List every version with its intervals.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile (or the versions) as JSON.")
@sdk_command
def profile(user: str, profiles: Path, at: str | None, by: str, list_versions: bool, as_json: bool) -> None:
    """Print USER's profile: the current one, or the version that held at --at.

    Every version keeps the event-time span of its data (data_from, data_to)
    and when it was written and replaced (valid_from, valid_to); see
    docs/update.md.

    \b
    interests profile u001 --profiles out/profiles.jsonl --at 2023-05-01
    interests profile u001 --profiles out/profiles.jsonl --versions
    """
    from interests.profile.versions import NoVersionError, profile_versions, version_at, version_summary

    if list_versions:
        if at is not None:
            raise click.UsageError("give --at or --versions, not both")
        versions = profile_versions(profiles, user)
        if not versions:
            raise NoVersionError(f"no profile for user {user!r} in {profiles} or its history")
        rows = [dict(version_summary(v)) for v in versions]
        if as_json:
            click.echo(json.dumps(rows, indent=1))
            return
        for r in rows:
            click.echo(
                f"v{r['version']} {r['made_by']}: data {r['data_from']} .. {r['data_to']}; "
                f"written {r['valid_from']} .. {r['valid_to'] or 'now'}"
            )
        return
    if at is None:
        versions = profile_versions(profiles, user)
        if not versions:
            raise NoVersionError(f"no profile for user {user!r} in {profiles} or its history")
        v = versions[-1]
    else:
        v = version_at(profiles, user, at, by=by)  # type: ignore[arg-type]
    if as_json:
        click.echo(v.profile.model_dump_json(indent=1))
        return
    s = version_summary(v)
    click.echo(
        f"{user}: version {s['version']} ({s['made_by']}), data {s['data_from']} .. {s['data_to']}, "
        f"written {s['valid_from']} .. {s['valid_to'] or 'now'}"
    )
    for d in v.profile.domains:
        click.echo(f"- {d.name} {d.weight:.0%}: " + ", ".join(f"{t.name} {t.weight:.0%}" for t in d.topics))
    click.echo(v.profile.summary)
