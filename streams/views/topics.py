"""Topic pages: the list, create, detail, configs, partitions and delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from streams import selectors, services
from streams.forms import (
    COMMON_CONFIGS,
    ConfirmNameForm,
    TopicConfigsForm,
    TopicCreateForm,
    TopicPartitionsForm,
    format_configs,
)
from streams.services import ServiceError
from streams.views.common import STAFF_ONLY, actor, int_param, staff_required, topic_or_404


@login_required
def topic_list(request: HttpRequest) -> HttpResponse:
    page = selectors.topic_page(
        search=request.GET.get("q", "").strip(),
        sort=request.GET.get("sort", "name"),
        descending=request.GET.get("order") == "desc",
        page=int_param(request, "page", 1),
        page_size=int_param(request, "size", 50, selectors.PAGE_SIZES),
        internal=request.GET.get("internal", "1") != "0",
    )
    context = {"page": page, "page_sizes": selectors.PAGE_SIZES}
    if request.headers.get("X-Partial"):
        return render(request, "streams/_topic_table.html", context)
    return render(request, "streams/topics.html", context)


@staff_required
def topic_create(request: HttpRequest) -> HttpResponse:
    form = TopicCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.topic_create(
                name=data["name"],
                partitions=data["partitions"],
                replication_factor=data["replication_factor"] or -1,
                configs=data["configs"],
                actor=actor(request),
            )
        except ServiceError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"Topic {data['name']} created.")
            return redirect("topic", name=data["name"])
    return render(
        request,
        "streams/topic_create.html",
        {"form": form, "common_configs": COMMON_CONFIGS},
        status=400 if form.errors else 200,
    )


@login_required
def topic(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    brokers = sorted({b for p in detail.partitions for b, _ in p.replicas})
    return render(
        request,
        "streams/topic.html",
        {
            "topic": detail,
            "tab": "partitions",
            "brokers": brokers,
            "page_data": {"topic": name, "partitions": [p.to_json() for p in detail.partitions]},
        },
    )


@login_required
def topic_configs(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    form = TopicConfigsForm(
        request.POST if request.method == "POST" else None,
        initial={"configs": format_configs(detail.overrides)},
    )
    if request.method == "POST":
        if not request.user.is_staff:
            raise PermissionDenied(STAFF_ONLY)
        if form.is_valid():
            wanted = form.cleaned_data["configs"]
            changed = {k: v for k, v in wanted.items() if detail.overrides.get(k) != v}
            removed = [k for k in detail.overrides if k not in wanted]
            try:
                services.topic_configs_alter(
                    name, set_configs=changed, delete_configs=removed, actor=actor(request)
                )
            except ServiceError as error:
                form.add_error("configs", error.message)
            else:
                messages.success(request, "Configs saved." if changed or removed else "No change.")
                return redirect("topic_configs", name=name)
    try:
        described = services.topic_configs_describe(name)
        describe_error = None
    except ServiceError as error:
        described, describe_error = [], error.message
    return render(
        request,
        "streams/topic_configs.html",
        {
            "topic": detail,
            "tab": "configs",
            "form": form,
            "configs": described,
            "describe_error": describe_error,
            "partitions_form": TopicPartitionsForm(
                initial={"partitions": len(detail.partitions) + 1}
            ),
            "delete_form": ConfirmNameForm(expected=name),
        },
        status=400 if form.errors else 200,
    )


@staff_required
def topic_partitions(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    form = TopicPartitionsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.topic_partitions_create(
                name, form.cleaned_data["partitions"], actor=actor(request)
            )
        except ServiceError as error:
            form.add_error("partitions", error.message)
        else:
            messages.success(
                request, f"{name} now has {form.cleaned_data['partitions']} partitions."
            )
            return redirect("topic", name=name)
    return render(
        request,
        "streams/topic_partitions.html",
        {"topic": detail, "tab": "configs", "form": form},
        status=400 if form.errors else 200,
    )


@staff_required
def topic_delete(request: HttpRequest, name: str) -> HttpResponse:
    detail = topic_or_404(name)
    form = ConfirmNameForm(request.POST or None, expected=name)
    if request.method == "POST" and form.is_valid():
        try:
            services.topic_delete(name, actor=actor(request))
        except ServiceError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Topic {name} deleted.")
            return redirect("topics")
    return render(
        request,
        "streams/topic_delete.html",
        {"topic": detail, "tab": "configs", "form": form},
        status=400 if form.errors else 200,
    )
