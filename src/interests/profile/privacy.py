"""Keyed pseudonyms for user ids (``interests extract --hash-user-ids``).

A raw user id (an e-mail address, an account number) is replaced in every
output record by ``h_`` and the first 16 hex digits of HMAC-SHA256 of the id
under a secret key. The same key gives the same pseudonym, so runs resume and
files from different runs join; without the key a pseudonym cannot be turned
back into the id, nor checked against a guess (unlike a plain hash).

    import os
    from interests.profile.privacy import hash_user_id, key_from_env
    os.environ["INTERESTS_HASH_KEY"] = "a long secret, kept out of the repository"
    assert hash_user_id("alice@example.com", key_from_env()).startswith("h_")

The key comes from the ``INTERESTS_HASH_KEY`` environment variable (its UTF-8
bytes); without it, hashing refuses to run rather than write raw ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
from collections.abc import Collection, Iterable, Mapping

from ..errors import ConfigError
from ..events import UserHistory

KEY_ENV = "INTERESTS_HASH_KEY"
PREFIX = "h_"
HEX_CHARS = 16
MIN_KEY_CHARS = 16
HASHED_ID = re.compile(rf"^{PREFIX}[0-9a-f]{{{HEX_CHARS}}}$")


def hash_user_id(user_id: str, key: bytes) -> str:
    """``h_`` + the first 16 hex digits of HMAC-SHA256(key, user_id)."""
    if not key:
        raise ConfigError("hashing user ids needs a non-empty key")
    digest = hmac.new(key, str(user_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_CHARS]


def key_from_env(env: Mapping[str, str] | None = None) -> bytes:
    """The secret key from ``$INTERESTS_HASH_KEY``; a :class:`ConfigError` saying how to set it otherwise."""
    value = (os.environ if env is None else env).get(KEY_ENV, "")
    if not value.strip():
        raise ConfigError(
            f"--hash-user-ids needs a secret key in ${KEY_ENV}; make one with "
            f"`export {KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))')` "
            "and keep it: the same key is needed to resume a run or join its files"
        )
    if len(value) < MIN_KEY_CHARS:
        raise ConfigError(f"${KEY_ENV} is too short ({len(value)} characters); use at least {MIN_KEY_CHARS}")
    return value.encode("utf-8")


def is_hashed(user_id: str) -> bool:
    """Whether ``user_id`` looks like a pseudonym made by :func:`hash_user_id`."""
    return bool(HASHED_ID.match(user_id))


def pseudonymise(
    histories: Mapping[str, UserHistory], users: Collection[str] | None, key: bytes
) -> tuple[dict[str, UserHistory], set[str] | None]:
    """Histories keyed (and named) by pseudonym, in the same order, and ``users`` hashed alike.

    The events are shared, not copied. Two ids with the same pseudonym (a
    64-bit collision) raise rather than merge two people.
    """
    out: dict[str, UserHistory] = {}
    for uid, history in histories.items():
        hid = hash_user_id(uid, key)
        if hid in out:
            raise ConfigError(f"two user ids hash to {hid}; use a different ${KEY_ENV}")
        out[hid] = dataclasses.replace(history, user_id=hid)
    return out, (None if users is None else {hash_user_id(u, key) for u in users})


def check_resume_ids(done: Iterable[str], hashed: bool) -> None:
    """Refuse to resume into an output whose records use the other kind of id.

    Appending hashed ids to a file of raw ids (or the reverse) would give the
    same users twice; a different key cannot be detected this way.
    """
    done = list(done)
    if not done:
        return
    looks_hashed = [is_hashed(u) for u in done]
    if hashed and not all(looks_hashed):
        raise ConfigError(
            "the output already holds records with raw user ids; write hashed ids to a new "
            "output file (-o) instead of resuming this one"
        )
    if not hashed and all(looks_hashed):
        raise ConfigError(
            "the output holds records with hashed user ids; resume it with --hash-user-ids "
            f"and the same ${KEY_ENV}, or write to a new output file (-o)"
        )


def hashed_profiles(profile_ids: Iterable[str]) -> bool:
    """Whether profiles were written with ``--hash-user-ids`` (every id a pseudonym)."""
    ids = list(profile_ids)
    return bool(ids) and all(is_hashed(u) for u in ids)


def match_ids(
    histories: Mapping[str, UserHistory],
    profile_ids: Iterable[str],
    env: Mapping[str, str] | None = None,
) -> Mapping[str, UserHistory]:
    """The logs' histories keyed like the profiles they go with.

    Profiles written with ``--hash-user-ids`` name users by pseudonym while
    the logs name them by raw id: the logs are pseudonymised with the key in
    ``$INTERESTS_HASH_KEY`` (a clear error without it, or when no log user
    matches: a different key). Otherwise the histories come back as they are.
    """
    ids = set(profile_ids)
    if not hashed_profiles(ids) or not histories or all(is_hashed(u) for u in histories):
        return histories
    value = (os.environ if env is None else env).get(KEY_ENV, "")
    if not value.strip():
        raise ConfigError(
            f"the profiles hold hashed user ids (written with --hash-user-ids): set ${KEY_ENV} to the "
            "key they were written with, so that the logs' users can be matched to them"
        )
    hashed, _ = pseudonymise(histories, None, value.encode("utf-8"))
    if not ids & set(hashed):
        raise ConfigError(
            f"no user of the logs matches a profile under this ${KEY_ENV}: the profiles were written "
            "with another key, or from other logs"
        )
    return hashed


__all__ = [
    "KEY_ENV",
    "check_resume_ids",
    "hash_user_id",
    "hashed_profiles",
    "is_hashed",
    "key_from_env",
    "match_ids",
    "pseudonymise",
]
