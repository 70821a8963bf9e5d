"""``interests api``: an HTTP recommendation service over a trained two-tower model and a profiles file.

::

    from interests.api import create_app
    from interests.recsys import TwoTower
    from interests.profile.store import read_profiles

    app = create_app(TwoTower.load("out/model"), read_profiles("out/profiles.jsonl"))
    # uvicorn.run(app, host="127.0.0.1", port=8000), or mount it in a FastAPI app of yours

Modules: :mod:`.app` (the FastAPI factory and :func:`serve`), :mod:`.state`
(in-memory users, histories, profiles, the score cache), :mod:`.scoring`
(one user's fused scores, fold-in of posted events, explanations),
:mod:`.refresh` (the bounded profile refresh queue and the refreshers: exact
statistics, an LLM's words where a hierarchy changed), :mod:`.middleware`
(API key, body limit, metrics), :mod:`.metrics` and :mod:`.schemas` (request and
response bodies); explanations are rendered by
:func:`interests.recsys.explain.explanation_json`, as in ``interests recommend``.
FastAPI, uvicorn and prometheus_client (the ``api`` extra) are imported only
when the service is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "interests.api.app",
    "serve": "interests.api.app",
    "check_bind": "interests.api.middleware",
    "UserStore": "interests.api.state",
    "Posted": "interests.api.state",
    "Scorer": "interests.api.scoring",
    "RefreshQueue": "interests.api.refresh",
    "RefreshFailed": "interests.api.refresh",
    "ProfileRefresher": "interests.api.refresh",
    "default_refresher": "interests.api.refresh",
    "llm_refresher": "interests.api.refresh",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'interests.api' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("fastapi", "uvicorn", "prometheus_client", "starlette"):
            from interests.errors import ConfigError

            raise ConfigError(
                f"the recommendation service needs {exc.name}: pip install 'interests[api]'"
            ) from exc
        raise
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
