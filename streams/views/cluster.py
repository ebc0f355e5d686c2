"""The cluster overview, the events feed and the account page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from streams import selectors
from streams.api import tokens
from streams.models import ClusterEvent
from streams.views.common import int_param

REPLICA_MAP_ROWS = 60


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    cluster = selectors.cluster_overview()
    broker_ids = [b.id for b in cluster.brokers]
    search = request.GET.get("replicas", "").strip()
    replica_rows, replica_total = selectors.replica_map(
        broker_ids, search=search, limit=REPLICA_MAP_ROWS
    )
    context = {
        "cluster": cluster,
        "replica_rows": replica_rows,
        "replica_total": replica_total,
        "replica_search": search,
        "events": selectors.events_recent(12),
        "page_data": {
            "brokers": broker_ids,
            "history": selectors.stats_history(),
        },
    }
    if request.headers.get("X-Partial") == "replicas":
        return render(request, "streams/_replica_map.html", context)
    return render(request, "streams/overview.html", context)


@login_required
def events(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in ClusterEvent.Kind.values:
        kind = ""
    before = int_param(request, "before", 0) or None
    page = selectors.event_page(
        kind=kind, search=request.GET.get("q", "").strip(), before=before, limit=50
    )
    return render(
        request,
        "streams/events.html",
        {"page": page, "kinds": ClusterEvent.Kind.choices, "live": before is None},
    )


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    token = tokens.token_for(request.user) if request.method == "POST" else None
    return render(request, "streams/account.html", {"token": token})
