"""`manage.py cluster`: run Redis, the controllers, the brokers and the web app until Ctrl-C."""

from __future__ import annotations

import secrets
import signal
import sys
import threading
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from kafkaweb.cluster import Cluster, ClusterSpec


def ensure_admin(data_dir: Any) -> tuple[str, str] | None:
    """Create the first admin on first run; return its credentials that one time."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser("admin", "", password)
    return "admin", password


class Command(BaseCommand):
    help = "Run the whole Kafkaweb cluster (Redis, controllers, brokers, web app) until Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-web", action="store_true", help="Do not start the web app.")

    def handle(self, *args: Any, **options: Any) -> None:
        spec = ClusterSpec(echo=sys.stdout)
        cluster = Cluster(spec)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            cluster.start_redis()
            cluster.migrate()
            credentials = ensure_admin(spec.data_dir)
            for n in range(1, spec.controllers + 1):
                cluster.start_controller(n)
            for n in range(1, spec.brokers + 1):
                cluster.start_broker(n)
            cluster.start_monitor()
            if not options["no_web"]:
                cluster.start_web()
            lines = [
                "",
                "Kafkaweb is running.",
                f"  Kafka bootstrap servers: {spec.bootstrap_servers}",
            ]
            if not options["no_web"]:
                lines.append(f"  Admin UI:                http://{spec.host}:{spec.web_port}/")
            if credentials:
                lines.append(
                    f"  First admin user:        {credentials[0]} / {credentials[1]}  (shown once)"
                )
            lines += [f"  Data and logs:           {spec.data_dir}", "Press Ctrl-C to stop.", ""]
            self.stdout.write("\n".join(lines))
            while not stop.wait(0.5):
                dead = [p.name for p in cluster.processes.values() if not p.running]
                if dead:
                    self.stderr.write(f"{', '.join(dead)} exited; stopping the cluster")
                    break
        finally:
            self.stdout.write("Stopping Kafkaweb...")
            cluster.stop()
            self.stdout.write("Stopped.")
