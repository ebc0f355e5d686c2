"""JSON API endpoints (documented in streams/api/openapi.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from streams import selectors, services
from streams.api import openapi
from streams.api.auth import ApiError, Endpoint
from streams.forms import (
    GroupResetForm,
    MessageSearchForm,
    ProduceForm,
    TopicCreateForm,
    TopicPartitionsForm,
)
from streams.models import ClusterEvent
from streams.services import ResetStrategy
from streams.services.messages import export_row
from streams.views.messages import EXPORT_VALUE_BYTES, export_response


def _actor(request: HttpRequest) -> str:
    return str(request.user.get_username())


def _int(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer") from exc


def _pagination(pagination: selectors.Pagination) -> dict[str, int]:
    return {
        "page": pagination.page,
        "pages": pagination.pages,
        "total": pagination.total,
        "page_size": pagination.page_size,
    }


def _topic_or_404(name: str) -> selectors.TopicDetail:
    detail = selectors.topic_detail(name)
    if detail is None:
        raise ApiError(404, f"Topic {name} does not exist.")
    return detail


def event_json(event: ClusterEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "at": event.created_at.isoformat(),
        "kind": event.kind,
        "broker": event.broker_id,
        "topic": event.topic,
        "partition": event.partition,
        "message": event.message,
        "actor": event.actor,
        "data": event.data,
    }


class Cluster(Endpoint):
    def get(self, request: HttpRequest) -> HttpResponse:
        cluster = selectors.cluster_overview()
        return JsonResponse(
            {
                "controller": cluster.controller,
                "brokers": [
                    {
                        "id": b.id,
                        "host": b.host,
                        "port": b.port,
                        "rack": b.rack or None,
                        "state": b.state,
                        "alive": b.alive,
                        "stats": b.stats,
                    }
                    for b in cluster.brokers
                ],
                "totals": cluster.totals,
                "topics": cluster.topics,
                "partitions": cluster.partitions,
                "offline_partitions": cluster.offline_partitions,
                "under_replicated_partitions": cluster.under_replicated,
                "groups": cluster.groups,
            }
        )


class Topics(Endpoint):
    def get(self, request: HttpRequest) -> HttpResponse:
        page = selectors.topic_page(
            search=request.GET.get("search", ""),
            sort=request.GET.get("sort", "name"),
            descending=request.GET.get("order") == "desc",
            page=_int(request, "page", 1),
            page_size=min(1000, max(1, _int(request, "page_size", 100))),
            internal=request.GET.get("internal", "true") != "false",
        )
        return JsonResponse(
            {
                "topics": [
                    {
                        **dataclasses.asdict(row),
                        "rates": {
                            "bytes_in_per_s": row.rates[0],
                            "messages_in_per_s": row.rates[1],
                            "bytes_out_per_s": row.rates[2],
                        },
                    }
                    for row in page.rows
                ],
                **_pagination(page.pagination),
            }
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = TopicCreateForm(self.body(request))
        if not form.is_valid():
            raise self.invalid(form)
        data = form.cleaned_data
        services.topic_create(
            name=data["name"],
            partitions=data["partitions"],
            replication_factor=data["replication_factor"] or -1,
            configs=data["configs"],
            actor=_actor(request),
        )
        detail = _topic_or_404(data["name"])
        response = JsonResponse(detail.to_json(), status=201)
        response["Location"] = reverse("api_topic", args=[data["name"]])
        return response


class Topic(Endpoint):
    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        return JsonResponse(_topic_or_404(name).to_json())

    def delete(self, request: HttpRequest, name: str) -> HttpResponse:
        _topic_or_404(name)
        services.topic_delete(name, actor=_actor(request))
        return HttpResponse(status=204)


class TopicConfigs(Endpoint):
    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        _topic_or_404(name)
        return JsonResponse(
            {
                "configs": [
                    dataclasses.asdict(entry) for entry in services.topic_configs_describe(name)
                ]
            }
        )

    def patch(self, request: HttpRequest, name: str) -> HttpResponse:
        _topic_or_404(name)
        body = self.body(request)
        set_configs = body.get("set") or {}
        delete_configs = body.get("delete") or []
        if not isinstance(set_configs, dict) or not isinstance(delete_configs, list):
            raise ApiError(400, 'Send {"set": {"name": "value"}, "delete": ["name"]}.')
        services.topic_configs_alter(
            name,
            set_configs={str(k): str(v) for k, v in set_configs.items()},
            delete_configs=[str(k) for k in delete_configs],
            actor=_actor(request),
        )
        return self.get(request, name)


class TopicPartitions(Endpoint):
    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        _topic_or_404(name)
        form = TopicPartitionsForm(self.body(request))
        if not form.is_valid():
            raise self.invalid(form)
        services.topic_partitions_create(
            name, form.cleaned_data["partitions"], actor=_actor(request)
        )
        return JsonResponse(_topic_or_404(name).to_json())


class Messages(Endpoint):
    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        _topic_or_404(name)
        form = MessageSearchForm(request.GET, topic=name)
        if not form.is_valid():
            raise self.invalid(form)
        state = services.scan_run(form.query(max_value_bytes=EXPORT_VALUE_BYTES), timeout_s=120)
        if request.GET.get("format") in ("csv", "json"):
            return export_response(name, state, request.GET["format"])
        return JsonResponse(
            {
                "summary": state.summary(),
                "messages": [export_row(r) for r in state.sorted_records()],
            }
        )

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        detail = _topic_or_404(name)
        form = ProduceForm(self.body(request), partitions=len(detail.partitions))
        if not form.is_valid():
            raise self.invalid(form)
        deliveries = services.message_produce(name, **form.produce_kwargs(), actor=_actor(request))
        failed = [d for d in deliveries if d.error]
        return JsonResponse(
            {
                "delivered": len(deliveries) - len(failed),
                "failed": len(failed),
                "messages": [d.to_json() for d in deliveries[:1000]],
            },
            status=201 if not failed else 502,
        )


class Message(Endpoint):
    def get(self, request: HttpRequest, name: str, partition: int, offset: int) -> HttpResponse:
        _topic_or_404(name)
        record = services.message_get(name, partition, offset)
        if record is None:
            raise ApiError(404, f"{name}-{partition} has no record at offset {offset}.")
        return JsonResponse(
            {**export_row(record), "compression": record.get("compression"), "raw": record}
        )


class Groups(Endpoint):
    def get(self, request: HttpRequest) -> HttpResponse:
        page = selectors.group_page(
            search=request.GET.get("search", ""),
            sort=request.GET.get("sort", "group"),
            descending=request.GET.get("order") == "desc",
            page=_int(request, "page", 1),
            page_size=min(1000, max(1, _int(request, "page_size", 100))),
        )
        return JsonResponse(
            {
                "groups": [dataclasses.asdict(row) for row in page.rows],
                **_pagination(page.pagination),
            }
        )


def _group_or_404(group_id: str) -> selectors.GroupDetail:
    detail = selectors.group_detail(group_id)
    if detail is None:
        raise ApiError(404, f"Group {group_id} does not exist.")
    return detail


class Group(Endpoint):
    def get(self, request: HttpRequest, group_id: str) -> HttpResponse:
        detail = _group_or_404(group_id)
        return JsonResponse(
            {
                **detail.to_json(),
                "history": [[at.isoformat(), lag] for at, lag in detail.history],
            }
        )

    def delete(self, request: HttpRequest, group_id: str) -> HttpResponse:
        _group_or_404(group_id)
        services.group_delete(group_id, actor=_actor(request))
        return HttpResponse(status=204)


class GroupReset(Endpoint):
    def post(self, request: HttpRequest, group_id: str) -> HttpResponse:
        _group_or_404(group_id)
        form = GroupResetForm(self.body(request))
        if not form.is_valid():
            raise self.invalid(form)
        plan = services.group_offsets_reset(
            group_id,
            strategy=ResetStrategy(form.cleaned_data["strategy"]),
            value=form.value,
            topics=form.topic_list,
            execute=bool(form.cleaned_data["execute"]),
            actor=_actor(request),
        )
        return JsonResponse(
            {
                "executed": bool(form.cleaned_data["execute"]),
                "offsets": [
                    {
                        "topic": r.topic,
                        "partition": r.partition,
                        "current": r.current,
                        "new": r.target,
                    }
                    for r in plan
                ],
            }
        )


class Events(Endpoint):
    def get(self, request: HttpRequest) -> HttpResponse:
        kind = request.GET.get("kind", "")
        if kind and kind not in ClusterEvent.Kind.values:
            raise ApiError(400, f"kind must be one of {', '.join(ClusterEvent.Kind.values)}")
        before = _int(request, "before", 0) or None
        page = selectors.event_page(
            kind=kind,
            search=request.GET.get("search", ""),
            before=before,
            limit=min(500, max(1, _int(request, "limit", 50))),
        )
        return JsonResponse(
            {"events": [event_json(e) for e in page.events], "next_before": page.before}
        )


def _body_fields(document: dict[str, Any], operation: dict[str, Any]) -> list[tuple[str, Any]]:
    """The request body's fields, its $ref resolved, for the docs page."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return []
    schema = content["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    required = set(schema.get("required", ()))
    return [
        (name, {**spec, "required": name in required})
        for name, spec in schema["properties"].items()
    ]


def schema(request: HttpRequest) -> HttpResponse:
    """The OpenAPI 3 document (public: it describes, it reveals nothing of the cluster)."""
    return JsonResponse(openapi.document(request.build_absolute_uri("/").rstrip("/") or "/"))


@login_required
def docs(request: HttpRequest) -> HttpResponse:
    document = openapi.document()
    operations = [
        {
            "method": method.upper(),
            "path": path,
            "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
            **operation,
            "parameters": [*item.get("parameters", []), *operation.get("parameters", [])],
            "body": _body_fields(document, operation),
        }
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "patch", "delete")
    ]
    tags = [
        {**tag, "operations": [o for o in operations if tag["name"] in o.get("tags", ())]}
        for tag in document["tags"]
    ]
    return render(
        request,
        "streams/api_docs.html",
        {"document": document, "tags": tags, "schemas": document["components"]["schemas"]},
    )
