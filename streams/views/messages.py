"""Message pages: search and browse, one message, export, live tail, produce."""

from __future__ import annotations

import csv
import io
import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from streams import services
from streams.forms import MessageSearchForm, ProduceForm
from streams.services import ServiceError
from streams.services.messages import export_row
from streams.views.common import actor, staff_required, topic_or_404

EXPORT_VALUE_BYTES = 1024 * 1024
EXPORT_FIELDS = ("partition", "offset", "timestamp", "timestamp_iso", "key", "value", "headers")


@login_required
def messages(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    form = MessageSearchForm(request.GET or None, topic=name)
    return render(
        request,
        "streams/messages.html",
        {
            "topic": detail,
            "tab": "messages",
            "form": form,
            "page_data": {"topic": name},
        },
    )


@login_required
def message(request: HttpRequest, name: str, partition: int, offset: int) -> HttpResponse:
    detail = topic_or_404(name)
    try:
        record = services.message_get(name, partition, offset)
    except ServiceError as error:
        return render(
            request,
            "streams/message.html",
            {"topic": detail, "tab": "messages", "error": error.message},
            status=503,
        )
    if record is None:
        raise Http404(f"{name}-{partition} has no record at offset {offset}.")
    return render(
        request,
        "streams/message.html",
        {
            "topic": detail,
            "tab": "messages",
            "record": record,
            "partition": partition,
            "offset": offset,
            "page_data": {"record": record},
        },
    )


def export_response(name: str, state: services.ScanState, fmt: str) -> HttpResponse:
    """A finished search as a CSV or JSON download."""
    rows = [export_row(r) for r in state.sorted_records()]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {**row, "headers": json.dumps(row["headers"]) if row["headers"] else ""}
            )
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        fmt = "json"
        response = HttpResponse(
            json.dumps({"summary": state.summary(), "messages": rows}, indent=1),
            content_type="application/json",
        )
    response["Content-Disposition"] = f'attachment; filename="{name}-messages.{fmt}"'
    return response


@login_required
def export(request: HttpRequest, name: str) -> HttpResponse:
    topic_or_404(name)
    form = MessageSearchForm(request.GET, topic=name)
    if not form.is_valid():
        return JsonResponse({"error": "Invalid search.", "fields": form.errors}, status=400)
    state = services.scan_run(form.query(max_value_bytes=EXPORT_VALUE_BYTES), timeout_s=120)
    return export_response(name, state, request.GET.get("format", "json"))


@login_required
def tail(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    return render(
        request,
        "streams/tail.html",
        {"topic": detail, "tab": "tail", "page_data": {"topic": name}},
    )


@staff_required
def produce(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    form = ProduceForm(request.POST or None, partitions=len(detail.partitions))
    deliveries = None
    if request.method == "POST" and form.is_valid():
        try:
            deliveries = services.message_produce(
                name, **form.produce_kwargs(), actor=actor(request)
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
    failed = [d for d in deliveries or () if d.error]
    return render(
        request,
        "streams/produce.html",
        {
            "topic": detail,
            "tab": "produce",
            "form": form,
            "headers": form.header_rows or [("", "")],
            "deliveries": (deliveries or [])[:100],
            "delivered": len(deliveries or []) - len(failed),
            "failed": failed[:20],
            "failed_count": len(failed),
        },
        status=400 if form.errors else 200,
    )
