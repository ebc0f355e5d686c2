"""The Celery application the broker and controller workers run."""

from __future__ import annotations

import os

from celery import Celery
from click import Option

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kafkaweb.settings")

app = Celery("kafkaweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["brokers"])

app.user_options["worker"].add(
    Option(
        ["--broker-id"], default=None, help="Run a Kafka broker node with this id in the worker."
    )
)
app.user_options["worker"].add(
    Option(["--controller-id"], default=None, help="Run a controller with this id in the worker.")
)
# Resolved by name when a worker starts, after Django is set up.
app.steps["worker"].add("brokers.node:BrokerBootstep")
app.steps["worker"].add("brokers.controller:ControllerBootstep")
