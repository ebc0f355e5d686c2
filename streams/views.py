"""Views of the admin UI."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from streams import selectors


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "streams/overview.html", {"brokers": selectors.broker_list()})
