"""Consumer group pages: the list, a group's lag and members, offset resets, deletion."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from streams import selectors, services
from streams.forms import ConfirmNameForm, GroupResetForm
from streams.services import GroupServiceError, ResetStrategy
from streams.views.common import actor, int_param, staff_required


@login_required
def group_list(request: HttpRequest) -> HttpResponse:
    page = selectors.group_page(
        search=request.GET.get("q", "").strip(),
        sort=request.GET.get("sort", "group"),
        descending=request.GET.get("order") == "desc",
        page=int_param(request, "page", 1),
        page_size=int_param(request, "size", 50, selectors.PAGE_SIZES),
    )
    context = {"page": page, "page_sizes": selectors.PAGE_SIZES}
    if request.headers.get("X-Partial"):
        return render(request, "streams/_group_table.html", context)
    return render(request, "streams/groups.html", context)


def _detail_context(group_id: str) -> dict[str, object]:
    detail = selectors.group_detail(group_id)
    if detail is None:
        raise Http404(f"Group {group_id} does not exist.")
    rows = [(p, detail.owners.get((p.topic, p.partition))) for p in detail.lag.partitions]
    return {
        "detail": detail,
        "rows": rows,
        "page_data": {
            "group": group_id,
            "history": [[int(at.timestamp() * 1000), lag] for at, lag in detail.history],
        },
    }


@login_required
def group(request: HttpRequest, group_id: str) -> HttpResponse:
    context = _detail_context(group_id)
    context["reset_form"] = GroupResetForm()
    context["delete_form"] = ConfirmNameForm(expected=group_id)
    return render(request, "streams/group.html", context)


@staff_required
def group_reset(request: HttpRequest, group_id: str) -> HttpResponse:
    context = _detail_context(group_id)
    form = GroupResetForm(request.POST or None)
    plan = None
    if request.method == "POST" and form.is_valid():
        execute = bool(form.cleaned_data["execute"])
        try:
            plan = services.group_offsets_reset(
                group_id,
                strategy=ResetStrategy(form.cleaned_data["strategy"]),
                value=form.value,
                topics=form.topic_list,
                execute=execute,
                actor=actor(request),
            )
        except GroupServiceError as error:
            form.add_error(None, str(error))
        else:
            if execute:
                messages.success(request, f"Offsets of {group_id} reset on {len(plan)} partitions.")
                return redirect("group", group_id=group_id)
    context.update(reset_form=form, plan=plan, delete_form=ConfirmNameForm(expected=group_id))
    return render(request, "streams/group.html", context, status=400 if form.errors else 200)


@staff_required
def group_delete(request: HttpRequest, group_id: str) -> HttpResponse:
    context = _detail_context(group_id)
    form = ConfirmNameForm(request.POST or None, expected=group_id)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_delete(group_id, actor=actor(request))
        except GroupServiceError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Group {group_id} deleted.")
            return redirect("groups")
    context.update(reset_form=GroupResetForm(), delete_form=form)
    return render(request, "streams/group.html", context, status=400 if form.errors else 200)
