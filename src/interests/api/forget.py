"""``DELETE /users/{user_id}``: forget one user in a running service (see :func:`forget_user`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .app import Service


def forget_user(service: Service, user_id: str) -> dict[str, Any]:
    """``DELETE /users/{id}``: the user out of memory (events, profile, trained row, refresh queue,
    score cache, bandit) and out of the events log and ``service.forget_paths``
    (:func:`interests.forget`), under the write lock so no post interleaves. A receipt."""
    from interests.forgetting import forget

    with service.write_lock:
        gone: dict[str, Any] = service.store.forget(user_id)
        gone["queued"] = service.queue.forget(user_id)
        service.scorer.cache.drop(user_id)
        gone["bandit_entries"] = service.bandit.forget(user_id)
        service.model.state.profile_nodes.pop(user_id, None)
        paths = [p for p in (service.events_log, *service.forget_paths) if p is not None and p.exists()]
        receipt = forget([user_id], paths) if paths else None
    files = [{"path": t.path, "action": t.action, "rows": t.rows} for t in receipt.touched] if receipt else []
    found = any(v for k, v in gone.items()) or bool(files)
    return {"user_id": user_id, "forgotten": found, "memory": gone, "files": files,
            "left": receipt.left if receipt else {}}  # fmt: skip


__all__ = ["forget_user"]
