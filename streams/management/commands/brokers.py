"""`manage.py brokers list | decommission N | elect-leaders`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from streams import selectors
from streams.services import cluster as services


class Command(BaseCommand):
    help = "List brokers, move every replica off one, or move leaders back to preferred replicas."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="brokers and their state")
        decommission = sub.add_parser("decommission", help="move every replica off a broker")
        decommission.add_argument("broker_id", type=int)
        sub.add_parser("elect-leaders", help="preferred-leader election for every partition")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                for broker in selectors.broker_list():
                    self.stdout.write(
                        f"{broker.id}\t{broker.host}:{broker.port}\t{broker.state}\tepoch {broker.epoch}"
                    )
            elif action == "decommission":
                moved = services.broker_decommission(options["broker_id"], actor="cli")
                self.stdout.write(
                    f"moving {len(moved)} partitions off broker {options['broker_id']}"
                )
                for name in moved:
                    self.stdout.write(f"  {name}")
            elif action == "elect-leaders":
                results = services.leaders_elect_preferred(actor="cli")
                moved = sorted(name for name, code in results.items() if code == 0)
                self.stdout.write(f"{len(moved)} leaders moved back to their preferred replica")
                for name in moved:
                    self.stdout.write(f"  {name}")
        except services.ClusterServiceError as exc:
            raise CommandError(str(exc)) from exc
