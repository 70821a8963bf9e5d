"""``interests forget``: remove users from every artifact under some folders."""

from __future__ import annotations

import json

import click

from .common import note, sdk_command


@click.command()
@click.argument("users", nargs=-1, required=True)
@click.option(
    "--from",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="A folder (walked) or file to forget the users in (repeatable): profiles, taxonomy, model, reports.",
)
@click.option(
    "--hash-user-ids",
    is_flag=True,
    help="Also forget the users' pseudonyms (--hash-user-ids of extract); key from $INTERESTS_HASH_KEY.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@sdk_command
def forget(users: tuple[str, ...], paths: tuple[str, ...], hash_user_ids: bool, as_json: bool) -> None:
    """Remove USERS (raw ids) from every file under --from; prints a receipt.

    Profiles, replaced versions, error records, quarantine rows, the API's events
    log, partition files and taxonomy user vectors lose the users' lines and rows;
    a trained model loses their rows without a retrain (and says what needs one);
    reports naming them are deleted. Files are rewritten atomically; a second run
    changes nothing. Logs are the users' source data: purge them yourself.

    \b
    interests forget u042 u077 --from out/
    INTERESTS_HASH_KEY=... interests forget alice@example.com --from out/ --hash-user-ids
    """
    from interests.forgetting import forget as run
    from interests.profile.privacy import key_from_env

    key = key_from_env() if hash_user_ids else None
    receipt = run(list(users), list(paths), hash_key=key)
    if as_json:
        click.echo(json.dumps(receipt.to_dict(), indent=1))
    else:
        for t in receipt.touched:
            rows = f"{t.rows} {t.what}" if t.rows else t.what
            click.echo(f"{t.action:9}  {t.path}  ({rows})")
        for folder, parts in receipt.retrain.items():
            if parts:
                note(f"{folder}: rows dropped without a retrain; retrain to remove {', '.join(parts)}")
        verdict = (
            f"forgot {receipt.users} user(s): {len(receipt.touched)} file(s) touched, "
            f"{receipt.rows} rows removed"
            if receipt.changed
            else f"nothing to forget: no file under --from holds these {receipt.users} user(s)"
        )
        note(f"{verdict}; {receipt.files_scanned} files scanned in {receipt.seconds:.2f}s")
    if receipt.needs_key:
        raise click.ClickException(
            f"{len(receipt.needs_key)} file(s) name users by pseudonym (written with --hash-user-ids), "
            f"so these users may still be there: run again with --hash-user-ids and the key in "
            f"$INTERESTS_HASH_KEY: {'; '.join(receipt.needs_key[:5])}"
        )
    if receipt.left:
        listed = "; ".join(f"{p} ({n})" for p, n in list(receipt.left.items())[:5])
        raise click.ClickException(
            f"{len(receipt.left)} file(s) still name a user, in a format forget does not rewrite "
            f"(logs are the source data: purge them yourself): {listed}"
        )
