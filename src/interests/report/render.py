"""Render profile reports as self-contained HTML or Markdown.

Templates are package data (``interests/report/templates``) rendered in a
Jinja *sandbox*; a folder given as ``template_dir`` is searched first, so one
template can be overridden without copying the others.

HTML escaping is Jinja's autoescape; Markdown escaping is a ``finalize`` hook
that escapes every value a template prints (only values marked safe, such as
the sparklines, pass unchanged). The HTML page carries a
Content-Security-Policy that allows no network access, and only the one
stylesheet and the one script the report ships itself (by hash).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .. import __version__
from ..errors import ConfigError
from ..events import Catalog
from ..profile.extract import sibling_path
from ..profile.privacy import hashed_profiles
from ..schema import ErrorRecord, QuarantinedRow
from .evidence import sources
from .inputs import (
    LogsInput,
    PathLike,
    ProfilesInput,
    load_errors,
    load_logs,
    load_profiles,
    load_quarantine,
    load_taxonomy,
)
from .recommendations import (
    Recommendation,
    RecommendationsInput,
    Recommender,
    coerce_recommendations,
    load_recommender,
    recommendations_from_model,
)
from .views import IndexView, UserView, index_view, slug, user_view, version_parts

if TYPE_CHECKING:  # pragma: no cover
    from ..taxonomy.model import Taxonomy

Format = Literal["html", "md"]
DEFAULT_SECTIONS = 200
FORMATS: dict[str, Format] = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!~])")


def md_escape(value: Any) -> Any:
    """Escape text for Markdown: HTML characters as entities, Markdown syntax with backslashes."""
    if value is None or isinstance(value, Markup) or not isinstance(value, str):
        return "" if value is None else value
    text = " ".join(value.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _pct(value: float | None, digits: int = 0) -> str:
    return "\u2013" if value is None else f"{value:.{digits}%}"


def _signed(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:+.2f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "\u2013" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def environment(fmt: Format, template_dir: PathLike | None = None) -> SandboxedEnvironment:
    """The sandboxed Jinja environment of one output format."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise ConfigError(f"template folder not found: {template_dir}")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.PackageLoader("interests.report", "templates"))
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=(lambda name: bool(name) and ".html" in name) if fmt == "html" else False,
        finalize=md_escape if fmt == "md" else None,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=_pct, signed=_signed, num=_num, md=md_escape, plural=_plural)
    return env


def _select(
    profiles: Sequence[Any], user: str | Sequence[str] | None, all_users: bool, errors: Sequence[ErrorRecord]
) -> tuple[list[Any], bool]:
    """The profiles to show and whether the page is a run index."""
    wanted = [user] if isinstance(user, str) else list(user or [])
    if all_users and not wanted:
        return list(profiles), True
    if not wanted:
        if len(profiles) == 1:
            return list(profiles), False
        raise ConfigError(
            f"the profiles file holds {len(profiles)} profiles: "
            "pass --user USER_ID for one, or --all for an index"
        )
    by_id = {p.user_id: p for p in profiles}
    missing = [u for u in wanted if u not in by_id]
    if missing:
        failed = {e.user_id: e for e in errors}
        u = missing[0]
        if u in failed:
            raise ConfigError(f"user {u!r} has no profile: {failed[u].stage} failed: {failed[u].reason}")
        known = ", ".join(sorted(by_id)[:5]) + (", ..." if len(by_id) > 5 else "")
        raise ConfigError(f"user {u!r} has no profile in the file (users there: {known})")
    return [by_id[u] for u in wanted], all_users or len(wanted) > 1


def _user_views(
    profiles: Sequence[Any],
    histories: dict[str, Any] | None,
    catalog: Catalog | None,
    recs: dict[str, list[Recommendation]],
    sections: int | None = None,
    profiles_path: Path | None = None,
) -> list[UserView]:
    """One view per profile; with ``profiles_path`` and its history file, each with its versions."""
    has_history = profiles_path is not None and sibling_path(profiles_path, "history").exists()
    seen: set[str] = set()
    views = []
    for n, p in enumerate(profiles):
        anchor = "user-" + slug(p.user_id)
        if anchor in seen:
            anchor = f"{anchor}-{n}"
        seen.add(anchor)
        history = histories.get(p.user_id) if histories is not None else None
        views.append(
            user_view(
                p,
                history=history,
                catalog=catalog,
                recommendations=recs.get(p.user_id, []),
                anchor=anchor,
                full=sections is None or n < sections,
                versions=version_parts(profiles_path, p.user_id)
                if has_history and profiles_path is not None and (sections is None or n < sections)
                else (),
            )
        )
    return views


def render_report(
    profiles: ProfilesInput,
    *,
    user: str | Sequence[str] | None = None,
    all_users: bool = False,
    logs: LogsInput | None = None,
    catalog: PathLike | Catalog | None = None,
    taxonomy: PathLike | Taxonomy | None = None,
    recommendations: RecommendationsInput | None = None,
    model: Recommender | PathLike | None = None,
    k: int = 5,
    errors: PathLike | Sequence[ErrorRecord] | None = None,
    quarantine: PathLike | Sequence[QuarantinedRow] | None = None,
    format: Format = "html",
    template_dir: PathLike | None = None,
    title: str | None = None,
    max_sections: int | None = DEFAULT_SECTIONS,
) -> str:
    """Render a report and return its text.

    ``profiles`` is a ``profiles.jsonl`` path or profiles. One user's page when
    ``user`` names one user (or the file holds one profile); a run index with
    every user (``all_users=True``) or the named users otherwise. ``logs``
    (paths, a ``Logs`` or histories by user) adds the evidence rows, exact heat
    maps and activity charts; ``catalog`` the item titles; ``recommendations``
    (plain data) or ``model`` (a recommender or its folder) the
    recommendations; ``errors``/``quarantine`` the run's error records and
    quarantined rows. Evidence rows name their log row as text
    (``events.csv:42``); the page links each log file once, by an absolute
    ``file://`` URI, so moving the report breaks no link. An index shows the first ``max_sections`` users
    in full (``None``: all) and lists every user in its table.
    """
    if format not in ("html", "md"):
        raise ConfigError(f"unknown report format {format!r}: use html or md")
    all_profiles = load_profiles(profiles)
    error_records = load_errors(errors)
    chosen, is_index = _select(all_profiles, user, all_users, error_records)
    every = [p.user_id for p in all_profiles]
    histories, cat, ingest_rows = load_logs(  # pseudonymised profiles: the logs are matched by key
        logs, catalog, users=[p.user_id for p in chosen] if not is_index or hashed_profiles(every) else None
    )
    rows = load_quarantine(quarantine) if quarantine is not None else (ingest_rows or [])
    sections = max_sections if is_index else None
    in_full = chosen if sections is None else chosen[:sections]
    recs = coerce_recommendations(recommendations)
    if model is not None:
        recommender = load_recommender(model) if isinstance(model, (str, Path)) else model
        ids = [p.user_id for p in in_full]
        recs.update(recommendations_from_model(recommender, ids, k=k, catalog=cat, histories=histories))
    path = Path(profiles) if isinstance(profiles, (str, Path)) else None
    views = _user_views(chosen, histories, cat, recs, sections, path)
    index: IndexView | None = None
    if is_index:
        index = index_view(
            chosen,
            views,
            taxonomy=load_taxonomy(taxonomy),
            errors=error_records,
            quarantine=rows,
            errors_given=errors is not None,
            quarantine_given=quarantine is not None or ingest_rows is not None,
            sections=sections,
        )
    env = environment(format, template_dir)
    default_title = "Interest profiles" if is_index else f"Interest profile of {chosen[0].user_id}"
    context: dict[str, Any] = {
        "title": title or default_title,
        "generated_at": datetime.now(tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "version": __version__,
        "users": views,
        "index": index,
        "sources": sources(i for u in views for d in u.domains for t in d.topics for i in t.items),
    }
    if format == "html":
        css = env.get_template("style.css").render()
        script = env.get_template("report.js").render()
        context.update(
            css=Markup(css),
            script=Markup(script),
            csp=(
                "default-src 'none'; img-src 'none'; base-uri 'none'; form-action 'none'; "
                f"style-src {_csp_hash(css)}; script-src {_csp_hash(script)}"
            ),
        )
    name = f"{'index' if is_index else 'user'}.{format}.j2"
    return env.get_template(name).render(context)


def write_report(
    output: PathLike, profiles: ProfilesInput, *, format: Format | None = None, **kwargs: Any
) -> Path:
    """Render a report (see :func:`render_report`) into ``output``; the format comes from the suffix."""
    out = Path(output)
    fmt = format or FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell the report format from {out.name!r}: name it .html or .md, or pass --format"
        )
    text = render_report(profiles, format=fmt, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = [
    "DEFAULT_SECTIONS",
    "FORMATS",
    "Format",
    "environment",
    "md_escape",
    "render_report",
    "write_report",
]
