"""The FastAPI app of ``interests api``: :func:`create_app` (mount it, or :func:`serve` it with uvicorn).

Endpoints: ``GET /users/{user_id}/recommendations`` (steered by ``?domain=``,
``?topic=``, ``?avoid=``, ``?mix=``; ``?explore=N`` slots for untouched domains,
ordered by a Thompson-sampling bandit that posted events teach), ``GET /users/{user_id}/profile``,
``GET /users/{user_id}/context`` (the profile as context for another LLM),
``POST /events``, ``DELETE /users/{user_id}`` (forget the user), ``GET /healthz``,
``GET /metrics``, plus FastAPI's ``/docs`` and ``/openapi.json``. Posted events are
written to the events log (one write and fsync per request) and folded into the user's history at once, so
the next recommendation reads them; the user is then queued for a profile
refresh in the background. On start the events log is read back, so a
restart loses no accepted event.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint
signatures at run time, and the events body model is built per app.)
"""

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from interests.errors import ConfigError
from interests.profile.store import append_lines, iter_jsonl, repair
from interests.recsys.explain import explanation_json, reason_lines

from .metrics import Metrics
from .middleware import Guard, check_bind, check_key, is_loopback
from .refresh import ProfileRefresher, Refresher, RefreshQueue, default_refresher
from .schemas import (
    MAX_ID_CHARS,
    ErrorOut,
    EventsOut,
    HealthOut,
    RecommendationsOut,
    event_batch_model,
)
from .scoring import Scorer
from .state import Posted, ScoreCache, Snapshot, UserStore

if TYPE_CHECKING:  # pragma: no cover
    from interests.events import Catalog
    from interests.profile.item_groups import ItemGroups
    from interests.recsys import TwoTower
    from interests.recsys.explore import DomainBandit
    from interests.schema import InterestProfile

log = logging.getLogger(__name__)

UNKNOWN_ITEM = "unknown item: not in the model's item vocabulary (new items need a retrain)"


@dataclass
class Service:
    """Everything an app holds (``app.state.interests``): for tests and for SDK users."""

    model: "TwoTower"
    store: UserStore
    scorer: Scorer
    queue: RefreshQueue
    metrics: Metrics
    events_log: Path | None
    api_key: str | None
    write_lock: threading.Lock
    bandit: "DomainBandit"
    forget_paths: tuple[Path, ...] = ()

    def feedback(self, events: list[Posted]) -> int:
        """Tell the explore bandit about posted events: an event in a domain an explore slot showed
        the user is a success. Returns how many were."""
        dom, _ = self.model.state.explore_domains()
        index = self.model.known.item_index
        hits = 0
        for e in events:
            d = int(dom[index[e.item_id]])
            if d >= 0 and self.bandit.clicked(e.user_id, d):
                hits += 1
        return hits

    def post(self, events: list[Posted]) -> None:
        """Log ``events`` durably (one write + fsync), then fold them into the histories."""
        with self.write_lock:  # one order for the log and the histories
            if self.events_log is not None:
                append_lines(self.events_log, [e.to_json() for e in events])
            self.store.add(events)


def replay(path: Path, store: UserStore) -> tuple[list[str], int]:
    """Read an events log back into ``store``; returns (users with events, lines skipped)."""
    repair(path)  # a torn last line from a killed server
    index = store.known.item_index
    events: list[Posted] = []
    skipped = 0
    for d in iter_jsonl(path):
        try:
            e = Posted.from_json(d)
        except (KeyError, TypeError, ValueError):
            skipped += 1
            continue
        if e.item_id in index:
            events.append(e)
        else:  # the model was retrained without this item
            skipped += 1
    if events:
        store.add(events)
    return list(dict.fromkeys(e.user_id for e in events)), skipped


def _open_private(path: Path) -> None:
    """Create the events log readable by its owner only (it holds reviews: personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def create_app(
    model: "TwoTower",
    profiles: "Mapping[str, InterestProfile] | Iterable[InterestProfile]" = (),
    *,
    catalog: "Catalog | None" = None,
    events_log: str | Path | None = None,
    refresher: Refresher | None = None,
    groups: "ItemGroups | None" = None,
    api_key: str | None = None,
    queue_size: int = 1000,
    max_body_bytes: int = 1 << 20,
    max_events: int = 10_000,
    cache_bytes: int = 256 << 20,
    stale_retry_s: float = 60.0,
    forget_paths: Iterable[str | Path] = (),
    tokenizer: str | None = None,
) -> FastAPI:
    """The recommendation service over a trained ``model`` and users' ``profiles``.

    ``events_log``: JSON Lines file the posted events are appended to and
    replayed from (``None``: events live in memory only). ``refresher``:
    called from a background thread with batches of user ids whose events
    changed (default: :func:`~interests.api.refresh.default_refresher`, exact
    statistics without an LLM; :func:`~interests.api.refresh.llm_refresher`
    adds an LLM's words where a user's hierarchy changed; a function of yours
    stores new profiles with ``app.state.interests.store.set_profiles``). ``groups``:
    how the profiles' items were grouped (``<profiles>.groups.json``, saved by
    ``extract``); default: grouped once over every user's history.
    ``api_key``: required on every request but ``/healthz``. ``cache_bytes``:
    memory for cached per-user score rows (4 bytes an item a user).
    ``forget_paths``: files and folders ``DELETE /users/{id}`` also forgets the
    user in, besides the events log (``interests api`` passes the profiles file,
    its siblings and the model folder).
    ``tokenizer``: what ``GET /users/{id}/context`` counts tokens with (an
    embedded model name or a tokenizer folder; default: the embedded model's).
    """
    from interests.recsys.explore import DomainBandit

    check_key(api_key)
    store = UserStore(model.known, profiles)
    scorer = Scorer(model, store, ScoreCache(cache_bytes))
    # load the text encoder now, not in the first request with a profile
    # (the hashing one imports scikit-learn: 1.7 s holding the GIL)
    if model.config.text_dim:
        model.state.encoder.get().encode(["warm-up"])
    queue_box: list[RefreshQueue] = []
    metrics = Metrics(lambda: queue_box[0].depth if queue_box else 0, lambda: len(store.stale))
    if refresher is None:
        refresher = default_refresher(store, catalog, groups)
    elif isinstance(refresher, ProfileRefresher):  # llm_refresher(...): this app's store, catalogue, groups
        refresher.bind(store, catalog, groups)
    refresh_queue = RefreshQueue(
        store,
        refresher,
        maxsize=queue_size,
        stale_retry_s=stale_retry_s,
        on_done=metrics.refreshed,
    )
    queue_box.append(refresh_queue)
    log_path = Path(events_log) if events_log is not None else None
    service = Service(
        model, store, scorer, refresh_queue, metrics, log_path, api_key, threading.Lock(), DomainBandit(),
        tuple(Path(p) for p in forget_paths),
    )  # fmt: skip
    if log_path is not None:
        _open_private(log_path)
        users, skipped = replay(log_path, store)
        if users or skipped:
            log.info("replayed events of %d users from %s (%d lines skipped)", len(users), log_path, skipped)
        for u in users:  # their profiles may predate the events
            refresh_queue.submit(u)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refresh_queue.start()  # also starts on the first post: a mounted app gets no lifespan
        yield
        refresh_queue.close()

    app = FastAPI(
        title="interests recommendation service",
        description="Recommendations, profiles and event fold-in over a trained two-tower model.",
        lifespan=lifespan,
    )
    app.state.interests = service
    EventBatch = event_batch_model(max_events)
    n_items = model.known.n_items
    item_index = model.known.item_index
    titles = scorer.titles

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # never echo pydantic's "input": it may be a review (personal data)
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        if any(e["type"] == "too_long" and e["loc"][:2] == ["body", "events"] for e in errors):
            detail = f"too many events: at most {max_events} a request (--max-events); split the batch"
            return JSONResponse({"detail": detail}, status_code=413)
        if any(e["type"] == "json_invalid" for e in errors):
            at = next(e["loc"][-1] for e in errors if e["type"] == "json_invalid")
            return JSONResponse(
                {"detail": f"the body is not valid JSON (at character {at})"}, status_code=400
            )
        parts = [f"{_loc(e['loc'])}: {e['msg']}" for e in errors[:10]]
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        return JSONResponse({"detail": "invalid request: " + "; ".join(parts) + more, "errors": errors}, 422)

    def route_of(scope: Any) -> str:
        for r in app.router.routes:
            if r.matches(scope)[0] == Match.FULL:
                return str(getattr(r, "path", "unmatched"))
        return "unmatched"

    app.add_middleware(
        Guard, metrics=metrics, api_key=api_key, max_body_bytes=max_body_bytes, route_of=route_of
    )

    UserId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_CHARS)]

    def steering(
        domain: list[str] | None, topic: list[str] | None, avoid: list[str] | None, mix: str | None
    ) -> Any:
        from interests.recsys.steer import Resolved, Steering

        try:
            return Resolved.of(Steering.of(domain, topic, avoid, mix), model.node_index)
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None

    def recommend(
        user_id: str,
        k: int,
        explain: bool,
        diverse: float,
        text: str | None,
        snap: Snapshot,
        steer: Any = None,
        explore: int = 0,
    ) -> Response:
        recs, snap, row = scorer.recommend_items(
            user_id,
            k,
            diverse=diverse,
            text=text,
            snap=snap,
            steer=steer,
            explore=explore,
            bandit=service.bandit if explore > 0 else None,
        )
        items = []
        for r in recs:
            rec: dict[str, Any] = {
                "item_id": r.item_id,
                "score": round(r.score, 6),
                "title": titles.get(r.item_id),
                "node": r.node,
                "source": r.source,
            }
            if explain:
                rec |= explanation_json(scorer.explain(snap, row, r.item_id), titles)
                rec["reasons"] = reason_lines(rec)
            items.append(rec)
        return JSONResponse({"user_id": user_id, "items": items, "source": snap.source})

    @app.get("/users/{user_id}/recommendations", response_model=RecommendationsOut)
    async def recommendations(
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=1000, description="How many items.")] = 20,
        explain: Annotated[bool, Query(description="Add reasons (slower: one explanation an item).")] = False,
        diverse: Annotated[float, Query(ge=0.0, le=1.0, description="Re-rank across L1 domains.")] = 0.0,
        text: Annotated[
            str | None, Query(max_length=2000, description="Cold start only: a description of the user.")
        ] = None,
        domain: Annotated[
            list[str] | None,
            Query(max_length=200, description="Steer: only items of this domain (repeat for several)."),
        ] = None,
        topic: Annotated[
            list[str] | None,
            Query(max_length=200, description="Steer: only items of this topic (repeat for several)."),
        ] = None,
        avoid: Annotated[
            list[str] | None,
            Query(max_length=200, description="Steer: no items of this domain, topic or category."),
        ] = None,
        mix: Annotated[
            str | None, Query(max_length=2000, description='Steer: shares per node, "jazz=0.6,sci-fi=0.4".')
        ] = None,
        explore: Annotated[
            int, Query(ge=0, le=100, description="Slots for domains the user has not touched (bandit).")
        ] = 0,
    ) -> Response:
        """Top-k items with scores: the user's history plus posted events, profile; cold start otherwise.

        Every item carries ``node`` (the hierarchy node it came from) and ``source``
        (``history``, ``profile``, ``steering`` or ``exploration``).
        """
        snap = store.snapshot(user_id)
        steer = steering(domain, topic, avoid, mix)
        hit = scorer.cached(snap, text)
        cheap = hit is not None and (snap.profile is None or "profile_wins" in hit.extra)
        if explain or not cheap:  # torch work: in the thread pool
            return await run_in_threadpool(
                recommend, user_id, k, explain, diverse, text, snap, steer, explore
            )
        return recommend(user_id, k, explain, diverse, text, snap, steer, explore)  # a cached row: 0.2 ms

    @app.get("/users/{user_id}/profile", responses={404: {"model": ErrorOut}})
    def profile(user_id: UserId) -> Response:
        """The user's interest profile (refreshed ones included); X-Profile-Stale: true when it lags."""
        p = store.profile(user_id)
        if p is None:
            raise HTTPException(
                404,
                f"no profile for user {user_id!r}: it is not in the profiles file and was not refreshed yet",
            )
        stale = "true" if (store.is_stale(user_id) or refresh_queue.waiting(user_id)) else "false"
        return JSONResponse(p.model_dump(mode="json"), headers={"X-Profile-Stale": stale})

    counter: list[Any] = []  # the tokenizer of GET /users/{id}/context

    @app.get("/users/{user_id}/context", responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}})
    def user_context(
        user_id: UserId,
        tokens: Annotated[
            int, Query(ge=1, le=100_000, description="Token budget (the tokenizer's count).")
        ] = 256,
        fmt: Annotated[Literal["text", "markdown", "json"], Query(alias="format")] = "text",
    ) -> Response:
        """The user's profile as context for another LLM, within ``tokens`` (see docs/context.md)."""
        from interests.llm.tokens import TextTokens
        from interests.profile.context import ContextBudgetError, render_context

        p = store.profile(user_id)
        if p is None:
            raise HTTPException(404, f"no profile for user {user_id!r}")
        if not counter:  # loaded on the first request, then kept
            counter.append(TextTokens(tokenizer))
        try:
            r = render_context(p, tokens, format=fmt, tokenizer=counter[0])
        except ContextBudgetError as exc:
            raise HTTPException(422, str(exc)) from None
        body = {"user_id": user_id, "format": fmt, "budget": tokens, "tokens": r.tokens}
        body |= {"lines_kept": r.lines_kept, "lines_dropped": r.dropped, "context": r.text}
        return JSONResponse(body)

    @app.post("/events", response_model=EventsOut, responses={413: {"model": ErrorOut}})
    def post_events(batch: EventBatch) -> Response:  # type: ignore[valid-type]
        """Add events of one or many users: logged, folded into histories at once; profiles refresh later."""
        now = time.time()
        accepted: list[Posted] = []
        rejected: list[dict[str, Any]] = []
        for n, e in enumerate(batch.events):  # type: ignore[attr-defined]
            if e.item_id not in item_index:
                rejected.append(
                    {"index": n, "user_id": e.user_id, "item_id": e.item_id, "reason": UNKNOWN_ITEM}
                )
                continue
            ts = now if e.timestamp is None else float(e.timestamp)
            accepted.append(Posted(e.user_id, e.item_id, ts, e.rating, e.event, e.text))
        if accepted:
            try:
                service.post(accepted)
            except OSError as exc:
                log.error("events log write failed: %s", type(exc).__name__)
                raise HTTPException(503, "could not write the events log; nothing was accepted") from None
            service.feedback(accepted)
        metrics.events.labels("accepted").inc(len(accepted))
        metrics.events.labels("rejected").inc(len(rejected))
        users = {u: refresh_queue.submit(u) for u in dict.fromkeys(e.user_id for e in accepted)}
        overall = "none" if not users else ("deferred" if "deferred" in users.values() else "queued")
        return JSONResponse(
            {"accepted": len(accepted), "rejected": rejected, "users": users, "refresh": overall}
        )

    @app.delete("/users/{user_id}", responses={403: {"model": ErrorOut}})
    def delete_user(user_id: UserId, request: Request) -> Response:
        """Forget the user: events, profile and trained row in memory, the events log and the files
        the service was started on. Needs the API key; without one, only from loopback."""
        client = request.client.host if request.client else ""
        if api_key is None and not is_loopback(client):
            raise HTTPException(403, "deleting a user needs an API key (--api-key) off loopback")
        from .forget import forget_user

        return JSONResponse(forget_user(service, user_id))

    @app.get("/healthz", response_model=HealthOut)
    async def healthz() -> Response:
        """Liveness and sizes; open without the API key."""
        body = {
            "status": "ok",
            "users": store.n_users,
            "items": n_items,
            "queue": refresh_queue.depth,
            "stale": len(store.stale),
        }
        return JSONResponse(body)

    @app.get("/metrics", response_class=Response)
    async def metrics_text() -> Response:
        """Prometheus text format."""
        data, content_type = metrics.render()
        return Response(data, media_type=content_type)

    return app


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info") -> None:
    """Run ``app`` with uvicorn (one worker; no access log: paths hold user ids). Refuses a
    non-loopback ``host`` unless the app has an API key."""
    import uvicorn

    service: Service = app.state.interests
    check_bind(host, service.api_key)
    if "OMP_NUM_THREADS" not in os.environ:  # one user's forward pass: extra torch threads only spin
        import torch

        torch.set_num_threads(1)
    uvicorn.run(
        app, host=host, port=port, workers=1, access_log=False, log_level=log_level, server_header=False
    )


__all__ = ["Service", "create_app", "replay", "serve"]
