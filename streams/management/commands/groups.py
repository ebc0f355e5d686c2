"""`manage.py groups list|describe|reset-offsets|delete`: consumer groups from the shell.

Modelled on Kafka's kafka-consumer-groups.sh: a reset only shows its plan unless --execute.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from streams import selectors, services


def _table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header, *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


class Command(BaseCommand):
    help = "List, describe, reset the offsets of, or delete consumer groups."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Every known group with its state and lag.")
        listing.add_argument("--state", help="Only groups in this state (e.g. Stable, Empty).")
        listing.add_argument("--json", action="store_true", help="Print JSON.")

        describe = sub.add_parser("describe", help="A group's members, offsets and lag.")
        describe.add_argument("group")
        describe.add_argument("--json", action="store_true", help="Print JSON.")

        reset = sub.add_parser("reset-offsets", help="Move an inactive group's offsets.")
        reset.add_argument("group")
        reset.add_argument(
            "--topic",
            action="append",
            dest="topics",
            help="A topic to reset (repeatable); default: every partition with an offset.",
        )
        target = reset.add_mutually_exclusive_group(required=True)
        target.add_argument("--to-earliest", action="store_true")
        target.add_argument("--to-latest", action="store_true")
        target.add_argument("--to-offset", type=int, metavar="OFFSET")
        target.add_argument("--shift-by", type=int, metavar="N")
        target.add_argument(
            "--to-datetime", metavar="ISO", help="e.g. 2026-11-28T17:00:00 (UTC unless given)"
        )
        reset.add_argument(
            "--execute", action="store_true", help="Commit the new offsets (else only show them)."
        )
        reset.add_argument("--json", action="store_true", help="Print JSON.")

        delete = sub.add_parser("delete", help="Delete an inactive group and its offsets.")
        delete.add_argument("group")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"_{action}")(options)
        except services.GroupServiceError as exc:
            raise CommandError(str(exc)) from exc

    def _emit(self, options: dict[str, Any], data: Any, text: str) -> None:
        self.stdout.write(json.dumps(data, indent=2, default=str) if options["json"] else text)

    def _list(self, options: dict[str, Any]) -> None:
        snapshot = selectors.group_lag_snapshot()
        groups = [g for g in snapshot.groups if not options["state"] or g.state == options["state"]]
        stored = {g.group_id: g for g in selectors.group_list()}
        rows = []
        for g in groups:
            row = stored.get(g.group)
            rows.append(
                [
                    g.group,
                    g.state,
                    row.protocol_type if row else "",
                    row.protocol if row else "",
                    g.members,
                    row.coordinator_id if row else None,
                    g.total_lag,
                ]
            )
        self._emit(
            options,
            [g.to_json() for g in groups],
            _table(rows, ["GROUP", "STATE", "TYPE", "PROTOCOL", "MEMBERS", "COORDINATOR", "LAG"]),
        )

    def _describe(self, options: dict[str, Any]) -> None:
        group = selectors.group_get(options["group"])
        if group is None:
            raise CommandError(f"group {options['group']} does not exist")
        lag = selectors.group_lag_snapshot(group.group_id).groups[0]
        owners: dict[tuple[str, int], dict[str, Any]] = {}
        for member in group.members:
            for assigned in member.get("assignment") or []:
                for partition in assigned["partitions"]:
                    owners[(assigned["topic"], partition)] = member
        rows = []
        for p in lag.partitions:
            owner = owners.get((p.topic, p.partition), {})
            rows.append(
                [
                    p.topic,
                    p.partition,
                    p.committed,
                    p.log_end,
                    p.lag,
                    owner.get("member_id"),
                    owner.get("client_host"),
                    owner.get("client_id"),
                ]
            )
        header = (
            f"Group {group.group_id}: {group.state}, generation {group.generation}, "
            f"protocol {group.protocol_type or '-'}/{group.protocol or '-'}, "
            f"{len(group.members)} members, coordinator {group.coordinator_id}, "
            f"total lag {lag.total_lag}\n\n"
        )
        table = _table(
            rows,
            [
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ],
        )
        members = _table(
            [
                [
                    m["member_id"],
                    m.get("group_instance_id"),
                    m.get("client_id"),
                    m.get("client_host"),
                    ", ".join(
                        f"{a['topic']}:{','.join(map(str, a['partitions']))}"
                        for a in m.get("assignment") or []
                    ),
                ]
                for m in group.members
            ],
            ["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"],
        )
        self._emit(
            options,
            {
                **lag.to_json(),
                "protocol_type": group.protocol_type,
                "protocol": group.protocol,
                "generation": group.generation,
                "coordinator": group.coordinator_id,
                "member_details": group.members,
            },
            header + table + "\n\n" + members,
        )

    def _reset_offsets(self, options: dict[str, Any]) -> None:
        value: int | datetime.datetime | None = None
        if options["to_earliest"]:
            strategy = services.ResetStrategy.EARLIEST
        elif options["to_latest"]:
            strategy = services.ResetStrategy.LATEST
        elif options["to_offset"] is not None:
            strategy, value = services.ResetStrategy.OFFSET, options["to_offset"]
        elif options["shift_by"] is not None:
            strategy, value = services.ResetStrategy.SHIFT, options["shift_by"]
        else:
            strategy = services.ResetStrategy.TIMESTAMP
            try:
                value = datetime.datetime.fromisoformat(options["to_datetime"])
            except ValueError as exc:
                raise CommandError(f"--to-datetime: {exc}") from exc
        plan = services.group_offsets_reset(
            options["group"],
            strategy=strategy,
            value=value,
            topics=options["topics"],
            execute=options["execute"],
            actor="manage.py groups",
        )
        rows = [[r.topic, r.partition, r.current, r.target] for r in plan]
        note = "" if options["execute"] else "\n\n(dry run: add --execute to commit these offsets)"
        self._emit(
            options,
            {
                "group": options["group"],
                "executed": options["execute"],
                "offsets": [
                    {
                        "topic": r.topic,
                        "partition": r.partition,
                        "current": r.current,
                        "new": r.target,
                    }
                    for r in plan
                ],
            },
            _table(rows, ["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]) + note,
        )

    def _delete(self, options: dict[str, Any]) -> None:
        services.group_delete(options["group"], actor="manage.py groups")
        self.stdout.write(f"Deleted group {options['group']}.")
