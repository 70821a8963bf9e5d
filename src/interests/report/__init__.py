"""Explainable profile reports: self-contained HTML and Markdown.

::

    from interests.report import write_report
    write_report("report.html", "out/profiles.jsonl", user="u001",
                 logs=["examples/logs/events.csv"], catalog="examples/logs/catalog.jsonl")

A user's page shows the summary, the interest hierarchy (L1 domains > L2
topics, collapsible) with the evidence behind every node (items, dates,
ratings, review snippets, the log rows they came from), sentiment per node,
time patterns as inline SVG charts, attributes, recommendations with reasons,
and provenance. ``all_users=True`` writes a run index (users with a filter,
domain distribution, error records, quarantined rows, extraction
statistics) followed by every user's section.

The HTML makes no network request (inline CSS and SVG, no CDN), works
without JavaScript, prints with everything expanded, escapes all text from
the data, and carries a Content-Security-Policy that allows only the one
style sheet and the one small script it ships.
"""

from __future__ import annotations

from .charts import heatmap, sparkline
from .recommendations import (
    Recommendation,
    Recommender,
    because,
    coerce_recommendations,
    load_recommender,
    recommendations_from_model,
)
from .render import FORMATS, environment, md_escape, render_report, write_report
from .views import IndexView, UserView, index_view, user_view

__all__ = [
    "FORMATS",
    "IndexView",
    "Recommendation",
    "Recommender",
    "UserView",
    "because",
    "coerce_recommendations",
    "environment",
    "heatmap",
    "index_view",
    "load_recommender",
    "md_escape",
    "recommendations_from_model",
    "render_report",
    "sparkline",
    "user_view",
    "write_report",
]
