"""Prometheus metrics of one app, in a registry of its own (two apps in one process do not mix).

``interests_api_requests_total{route,method,status}``,
``interests_api_request_seconds{route}`` (latency histogram, measured in the
server around the app, so it excludes the client's own time),
``interests_api_events_total{outcome}`` (accepted / rejected),
``interests_api_refresh_queue_depth``, ``interests_api_stale_users``,
``interests_api_refreshes_total{outcome}`` (ok / error, counted in users).
Routes are path templates (``/users/{user_id}/recommendations``), never raw
paths, so user ids do not become label values.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """The counters, gauges and histograms of one app."""

    def __init__(self, queue_depth: Callable[[], float], stale_users: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "interests_api_requests",
            "HTTP requests by route and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "interests_api_request_seconds",
            "Time in the server per request, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.events = Counter("interests_api_events", "Posted events by outcome.", ["outcome"], registry=r)
        self.refreshes = Counter(
            "interests_api_refreshes",
            "Users refreshed by the background worker, by outcome.",
            ["outcome"],
            registry=r,
        )
        Gauge(
            "interests_api_refresh_queue_depth", "Users waiting for a profile refresh.", registry=r
        ).set_function(queue_depth)
        Gauge("interests_api_stale_users", "Users whose profile lags their events.", registry=r).set_function(
            stale_users
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def refreshed(self, users: int, ok: bool) -> None:
        self.refreshes.labels("ok" if ok else "error").inc(users)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["BUCKETS", "Metrics"]
