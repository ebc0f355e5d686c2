"""Reads of cluster metadata for the UI, the API and the CLI."""

from __future__ import annotations

from django.db.models import QuerySet

from streams.models import Broker


def broker_list() -> QuerySet[Broker]:
    return Broker.objects.all()
