"""The service's users in memory: trained histories plus posted events, profiles, versions, the score cache.

A user's history is the model's own (``model.known``) followed by the events
posted since, merged in time order (events without a time first, ties in
arrival order: the order ingestion uses). Every change to a user (events,
a refreshed profile) bumps the user's *version*; cached score rows carry the
version they were computed from and are used only while it is current.

Thread safety: one lock guards every change. Arrays are replaced, never
changed in place, so a :class:`Snapshot` taken under the lock stays
consistent after it is released; requests score snapshots without holding
the lock.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import UserHistory
    from interests.recsys.data import Histories
    from interests.schema import InterestProfile

Source = Literal["known", "events", "cold"]


@dataclass(frozen=True)
class Posted:
    """One accepted event: its item is in the model's vocabulary, its time is set."""

    user_id: str
    item_id: str
    ts: float
    rating: float | None = None
    event: str | None = None
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "ts": self.ts,
            "rating": self.rating,
            "event": self.event,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Posted:
        rating = d.get("rating")
        return cls(
            str(d["user_id"]),
            str(d["item_id"]),
            float(d["ts"]),
            None if rating is None else float(rating),
            d.get("event"),
            d.get("text"),
        )


@dataclass(frozen=True)
class Snapshot:
    """A user's state at one version: what scoring reads."""

    user_id: str
    items: np.ndarray  # item indices in time order
    times: np.ndarray  # epoch seconds, NaN when unknown
    ratings: np.ndarray  # NaN when none
    profile: InterestProfile | None
    source: Source
    pristine: bool  # a trained user as trained: no posted events, the profile it was loaded with
    version: int


_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)


class UserStore:
    """Histories, profiles and versions of every user the service knows (trained or posted)."""

    def __init__(self, known: Histories, profiles: Mapping[str, InterestProfile] | Iterable[InterestProfile]):
        self.known = known
        self._row = known.user_index()
        self._profiles: dict[str, InterestProfile] = (
            dict(profiles) if isinstance(profiles, Mapping) else {p.user_id: p for p in profiles}
        )
        self._posted: dict[str, list[Posted]] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._changed: set[str] = set()  # users whose profile was replaced since loading
        self._version: dict[str, int] = {}
        self.stale: set[str] = set()  # users whose profile does not reflect their events yet
        self._forgotten: set[str] = set()  # deleted: a refresh still in flight must not bring them back
        self.lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        with self.lock:
            return len(self._row) + sum(1 for u in self._posted if u not in self._row)

    def user_ids(self) -> list[str]:
        """Trained users, then users known only from posted events."""
        with self.lock:
            return list(self._row) + [u for u in self._posted if u not in self._row]

    def n_events(self, user_id: str) -> int:
        """Events in the user's history: trained plus posted."""
        return len(self.snapshot(user_id).items)

    def n_posted(self, user_id: str) -> int:
        with self.lock:
            return len(self._posted.get(user_id, ()))

    def profile(self, user_id: str) -> InterestProfile | None:
        return self._profiles.get(user_id)

    def is_stale(self, user_id: str) -> bool:
        return user_id in self.stale

    def version(self, user_id: str) -> int:
        return self._version.get(user_id, 0)

    def snapshot(self, user_id: str) -> Snapshot:
        with self.lock:
            arrays = self._arrays.get(user_id)
            row = self._row.get(user_id)
            if arrays is None:
                k = self.known
                arrays = (
                    (k.items[row], k.times[row], k.ratings[row])
                    if row is not None
                    else (_EMPTY_I, _EMPTY_F, _EMPTY_F)
                )
            source: Source = "known" if row is not None else ("events" if len(arrays[0]) else "cold")
            pristine = row is not None and user_id not in self._posted and user_id not in self._changed
            items, times, ratings = arrays
            return Snapshot(
                user_id,
                items,
                times,
                ratings,
                profile=self._profiles.get(user_id),
                source=source,
                pristine=pristine,
                version=self._version.get(user_id, 0),
            )

    def history(self, user_id: str) -> UserHistory:
        """The user's events as ingestion would give them (for a profile refresh)."""
        return build_history(user_id, *self.history_parts(user_id), self.known.item_ids)

    def history_parts(self, user_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Posted]]:
        """(items, times, ratings, posted events) of one user: what :func:`build_history` needs,
        cheap to send to another process."""
        snap = self.snapshot(user_id)
        with self.lock:
            posted = list(self._posted.get(user_id, ()))
        return snap.items, snap.times, snap.ratings, posted

    # ---- changing ------------------------------------------------------------------------------
    def add(self, events: Sequence[Posted]) -> dict[str, int]:
        """Append accepted events to their users' histories; returns each user's new event count."""
        by_user: dict[str, list[Posted]] = {}
        for e in events:
            by_user.setdefault(e.user_id, []).append(e)
        index = self.known.item_index
        out: dict[str, int] = {}
        with self.lock:
            for uid, evs in by_user.items():
                row = self._row.get(uid)
                if uid in self._arrays:
                    items, times, ratings = self._arrays[uid]
                elif row is not None:
                    items, times, ratings = (
                        self.known.items[row],
                        self.known.times[row],
                        self.known.ratings[row],
                    )
                else:
                    items, times, ratings = _EMPTY_I, _EMPTY_F, _EMPTY_F
                items = np.concatenate([items, np.array([index[e.item_id] for e in evs], dtype=np.int64)])
                times = np.concatenate([times, np.array([e.ts for e in evs], dtype=np.float64)])
                ratings = np.concatenate(
                    [ratings, np.array([np.nan if e.rating is None else e.rating for e in evs])]
                )
                order = np.argsort(np.where(np.isnan(times), -np.inf, times), kind="stable")
                self._arrays[uid] = (items[order], times[order], ratings[order])
                self._posted.setdefault(uid, []).extend(evs)
                self._version[uid] = self._version.get(uid, 0) + 1
                self._forgotten.discard(uid)  # posted again after a delete: a new user
                out[uid] = len(items)
        return out

    def set_profiles(self, profiles: Mapping[str, InterestProfile]) -> None:
        """Replace users' profiles (a refresh); their scores are recomputed on the next request."""
        with self.lock:
            for uid, p in profiles.items():
                if uid in self._forgotten:
                    continue
                self._profiles[uid] = p
                self._changed.add(uid)
                self._version[uid] = self._version.get(uid, 0) + 1
                self.stale.discard(uid)

    def mark_stale(self, user_ids: Iterable[str]) -> None:
        ids = list(user_ids)  # before the lock: a generator may read the store
        with self.lock:
            self.stale.update(i for i in ids if i not in self._forgotten)

    def forget(self, user_id: str) -> dict[str, int]:
        """Remove everything held about ``user_id``: posted events, profile, the trained row's use
        (the user is cold from now on), version, stale mark. Returns what went."""
        with self.lock:
            gone = {
                "posted_events": len(self._posted.pop(user_id, ())),
                "profile": int(self._profiles.pop(user_id, None) is not None),
                "trained_row": int(self._row.pop(user_id, None) is not None),
            }
            self._arrays.pop(user_id, None)
            self._changed.discard(user_id)
            self.stale.discard(user_id)
            self._version[user_id] = self._version.get(user_id, 0) + 1  # no cached row is current
            self._forgotten.add(user_id)
            return gone

    def take_stale(self, n: int) -> list[str]:
        """Up to ``n`` stale users, removed from the stale set (the caller refreshes them)."""
        with self.lock:
            out = [u for _, u in zip(range(n), self.stale, strict=False)]
            self.stale.difference_update(out)
            return out


def build_history(
    user_id: str,
    items: np.ndarray,
    times: np.ndarray,
    ratings: np.ndarray,
    posted: Sequence[Posted],
    item_ids: Sequence[str],
) -> UserHistory:
    """A user's events as ingestion would give them, from :meth:`UserStore.history_parts`."""
    from interests.events import Event, UserHistory

    extra = {(p.item_id, p.ts): p for p in posted}
    events = []
    for i, t, r in zip(items.tolist(), times.tolist(), ratings.tolist(), strict=True):
        iid, ts = item_ids[i], None if math.isnan(t) else t
        p = extra.get((iid, t))
        events.append(
            Event(
                user_id,
                iid,
                ts,
                None if math.isnan(r) else r,
                text=p.text if p is not None else None,
                event=p.event if p is not None else None,
                source="api" if p is not None else "",
            )
        )
    return UserHistory(user_id, events)


class ScoreCache:
    """Least-recently-used cache of per-user score rows, bounded in bytes.

    An entry is ``(version, value)``; :meth:`get` returns the value only while
    the store still has that version of the user.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._d: OrderedDict[str, tuple[int, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, user_id: str, version: int) -> Any | None:
        with self._lock:
            hit = self._d.get(user_id)
            if hit is None or hit[0] != version:
                return None
            self._d.move_to_end(user_id)
            return hit[1]

    def put(self, user_id: str, version: int, value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._d.pop(user_id, None)
            if old is not None:
                if old[0] > version:  # a newer row got there first
                    self._d[user_id] = old
                    return
                self._bytes -= old[2]
            self._d[user_id] = (version, value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._d:
                _, (_, _, s) = self._d.popitem(last=False)
                self._bytes -= s

    def drop(self, user_id: str) -> None:
        """Forget ``user_id``'s cached rows."""
        with self._lock:
            old = self._d.pop(user_id, None)
            if old is not None:
                self._bytes -= old[2]

    def __len__(self) -> int:
        return len(self._d)


__all__ = ["Posted", "ScoreCache", "Snapshot", "Source", "UserStore", "build_history"]
