"""What every page view shares: the staff check, paging input, topic lookup."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from streams import selectors

View = Callable[..., HttpResponse]
STAFF_ONLY = "Only staff users can change the cluster."


def staff_required(view: View) -> View:
    """Viewers read; only staff change anything (403 otherwise, even for the form's GET)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied(STAFF_ONLY)
        return view(request, *args, **kwargs)

    return wrapped


def actor(request: HttpRequest) -> str:
    return str(request.user.get_username())


def int_param(request: HttpRequest, name: str, default: int, choices: tuple[int, ...] = ()) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return default
    if choices and value not in choices:
        return default
    return value


def topic_or_404(name: str) -> selectors.TopicDetail:
    detail = selectors.topic_detail(name)
    if detail is None:
        raise Http404(f"Topic {name} does not exist.")
    return detail
