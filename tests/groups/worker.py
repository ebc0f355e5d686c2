"""A confluent-kafka consumer in its own process, for tests that kill consumers.

Prints one JSON object a line: {"assigned": [[topic, partition], ...]} when its assignment
changes, {"processed": value} per record it processes, {"committed": offset} per commit.
Modes:
  member         consume until killed;
  at-least-once  process records, commit after --commit-after of them, then crash after
                 --crash-after (processed, not committed: they must come again);
  at-most-once   take --crash-after records, commit past them, then crash before processing
                 them (they must not come again).
A crash is os._exit: no commit, no LeaveGroup, like a killed process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from confluent_kafka import Consumer, TopicPartition


def say(**values: object) -> None:
    sys.stdout.write(json.dumps(values) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--mode", choices=["member", "at-least-once", "at-most-once"])
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--commit-after", type=int, default=0)
    parser.add_argument("--crash-after", type=int, default=0)
    args = parser.parse_args()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([args.topic])
    assigned: list[list[object]] = []
    processed = 0
    while True:
        if args.mode == "at-most-once":
            batch = consumer.consume(args.crash_after - processed, 0.5)
            batch = [m for m in batch if m.error() is None]
            processed += len(batch)
            if processed >= args.crash_after:
                last = batch[-1]
                consumer.commit(
                    offsets=[TopicPartition(last.topic(), last.partition(), last.offset() + 1)],
                    asynchronous=False,
                )
                say(committed=last.offset() + 1)
                os._exit(1)
            continue
        message = consumer.poll(0.2)
        now = sorted([tp.topic, tp.partition] for tp in consumer.assignment())
        if now != assigned:
            assigned = now
            say(assigned=assigned)
        if message is None or message.error() is not None or args.mode == "member":
            continue
        processed += 1
        say(processed=message.value().decode())
        if processed == args.commit_after:
            consumer.commit(message=message, asynchronous=False)
            say(committed=message.offset() + 1)
        if processed == args.crash_after:
            os._exit(1)


if __name__ == "__main__":
    main()
