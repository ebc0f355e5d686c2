"""Template filters of the admin UI: numbers, sizes, rates and times as people read them."""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


@register.filter
def num(value: Any) -> str:
    """1234567 → 1,234,567; None → —."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:,.1f}"


@register.filter
def size(value: Any) -> str:
    """Bytes in the largest unit that keeps the number below 1,000 (decimal units)."""
    if value is None or value == "":
        return "—"
    number = float(value)
    for unit in _UNITS:
        if abs(number) < 1000 or unit == _UNITS[-1]:
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1000
    return str(value)


@register.filter
def rate(value: Any) -> str:
    """Bytes per second."""
    if value is None or value == "":
        return "—"
    return f"{size(value)}/s"


@register.filter
def per_second(value: Any) -> str:
    """A count per second."""
    if value is None or value == "":
        return "—"
    return f"{num(value)}/s"


@register.filter
def code_spans(text: str) -> SafeString:
    """`like this` in plain text as <code>like this</code>, the rest escaped."""
    parts = escape(text).split("`")
    # Every part was escaped above.
    return mark_safe("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)))


@register.filter
def ms_time(value: Any) -> str:
    """A unix-ms timestamp as UTC date and time."""
    if value is None or int(value) < 0:
        return "—"
    moment = datetime.datetime.fromtimestamp(int(value) / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@register.simple_tag(takes_context=True)
def query(context: Any, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + urlencode(sorted(params.lists()), doseq=True) if params else "?"


@register.simple_tag(takes_context=True)
def sort_link(context: Any, column: str, current: str, descending: bool) -> str:
    """The query string that sorts by `column`, flipping the order if it is already sorted."""
    order = "asc" if column == current and descending else "desc" if column == current else "asc"
    return str(query(context, sort=column, order=order, page=None))


@register.filter
def sort_mark(column: str, page: Any) -> str:
    if page.sort != column:
        return ""
    return " ↓" if page.descending else " ↑"


_SECTIONS = {
    "overview": {"overview"},
    "topics": {
        "topics",
        "topic_create",
        "topic",
        "topic_configs",
        "topic_partitions",
        "topic_delete",
        "messages",
        "message",
        "tail",
        "produce",
    },
    "groups": {"groups", "group", "group_reset", "group_delete"},
    "events": {"events"},
    "api": {"api_docs"},
    "account": {"account"},
}


@register.simple_tag(takes_context=True)
def nav_class(context: Any, section: str) -> str:
    """ "active" on the sidebar link of the section the current page belongs to."""
    match = getattr(context.get("request"), "resolver_match", None)
    return "active" if match is not None and match.url_name in _SECTIONS[section] else ""


_KIND_LABELS = {
    "broker_up": "broker up",
    "broker_down": "broker down",
    "controller": "controller",
    "leader": "leader",
    "isr": "ISR",
    "topic": "topic",
    "config": "config",
    "group": "group",
    "admin": "admin",
}
_KIND_STYLES = {
    "broker_down": "bad",
    "broker_up": "ok",
    "leader": "warn",
    "isr": "warn",
    "admin": "accent",
    "topic": "info",
    "config": "info",
}


@register.inclusion_tag("streams/_event_badge.html")
def event_badge(kind: str) -> dict[str, str]:
    """The short, coloured label of an event kind (static/js/pages/events-shared.js agrees)."""
    return {
        "kind": kind,
        "label": _KIND_LABELS.get(kind, kind),
        "style": _KIND_STYLES.get(kind, ""),
    }
