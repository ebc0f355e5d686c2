"""A consume-transform-produce loop with confluent-kafka, exactly once, as an application runs it.

Run as `python -m tests.compat.eos_worker BOOTSTRAP INPUT OUTPUT TRANSACTIONAL_ID GROUP TOTAL
[CRASH_AFTER]`: it reads INPUT from the group's committed offsets, writes each value upper-cased
to OUTPUT and commits its input offsets in the same transaction, until the group has consumed
TOTAL records. With CRASH_AFTER it kills itself with SIGKILL in the middle of the transaction
after that many committed ones: output written and offsets sent, but not committed.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

PARTITIONS = 3
BATCH = 20


def main(argv: list[str]) -> int:
    bootstrap, source, sink, transactional_id, group = argv[:5]
    total = int(argv[5])
    crash_after = int(argv[6]) if len(argv) > 6 else None
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(source, p) for p in range(PARTITIONS)])
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(60)
    done = sum(max(tp.offset, 0) for tp in consumer.committed(consumer.assignment(), 60))
    committed = 0
    deadline = time.monotonic() + 120
    while done < total and time.monotonic() < deadline:
        messages = [m for m in consumer.consume(BATCH, 0.5) if m.error() is None]
        if not messages:
            continue
        producer.begin_transaction()
        for message in messages:
            producer.produce(sink, value=message.value().upper(), partition=message.partition())
        positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
        if crash_after is not None and committed == crash_after:
            producer.flush(60)
            os.kill(os.getpid(), signal.SIGKILL)
        producer.commit_transaction(60)
        committed += 1
        done += len(messages)
    consumer.close()
    return 0 if done >= total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
