"""Record batches are stored as the client sent them: only base offset and leader epoch change.

A proxy in front of the brokers captures what confluent-kafka puts in each Produce request;
the segment files of every replica must hold the same bytes.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory, produce
from tests.compat.proxy import proxied
from tests.compat.records import CODEC_IDS, CODECS, PARTITIONS, make_records

pytestmark = pytest.mark.cluster

# base offset, batch length, partition leader epoch, magic, crc, attributes
_HEADER = struct.Struct(">qiibIh")
# producer id, producer epoch, base sequence
_PRODUCER = struct.Struct(">qhi")
_PRODUCER_AT = 43


def split_batches(data: bytes) -> list[bytes]:
    batches = []
    position = 0
    while position + 12 <= len(data):
        _, length, *_ = _HEADER.unpack_from(data, position)
        batches.append(data[position : position + 12 + length])
        position += 12 + length
    assert position == len(data), "a partial batch"
    return batches


def stored_batches(partition_dir: Path) -> list[bytes]:
    return [
        batch
        for segment in sorted(partition_dir.glob("*.log"))
        for batch in split_batches(segment.read_bytes())
    ]


def sent_batches(requests: list[bytes]) -> list[bytes]:
    """Batches in the order sent, a retried one (same producer id and sequence) counted once."""
    seen: dict[tuple[int, int, int], bytes] = {}
    out = []
    for batch in (b for records in requests for b in split_batches(records)):
        key = _PRODUCER.unpack_from(batch, _PRODUCER_AT)
        if key in seen:
            assert seen[key] == batch, "a retry that differs from the first send"
            continue
        seen[key] = batch
        out.append(batch)
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_batches_are_stored_byte_for_byte(
    cluster: Cluster,
    new_topic: TopicFactory,
    codec: str,
) -> None:
    topic = new_topic()
    spec = cluster.spec
    brokers = {n: spec.broker_address(n) for n in range(1, spec.brokers + 1)}
    with proxied(brokers) as proxy:
        produce(
            proxy.bootstrap_servers,
            topic,
            make_records(f"stored-{codec}", 3000),
            **{"compression.type": codec, "batch.num.messages": 400},
        )
        captured = proxy.captured.records

    codecs_sent: set[int] = set()
    for partition in range(PARTITIONS):
        sent = sent_batches(captured[(topic, partition)])
        assert sent, f"nothing sent to partition {partition}"
        codecs_sent.update(_HEADER.unpack_from(b)[5] & 0x07 for b in sent)
        replicas = sorted(spec.data_dir.glob(f"broker-*/{topic}-{partition}"))
        assert len(replicas) == 3
        for replica in replicas:
            deadline = time.monotonic() + 30
            while (
                len(stored := stored_batches(replica)) < len(sent) and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            assert len(stored) == len(sent), f"{replica}: {len(stored)} batches, sent {len(sent)}"
            next_offset = 0
            for number, (want, have) in enumerate(zip(sent, stored, strict=True)):
                base_offset, _, leader_epoch, *_ = _HEADER.unpack_from(have)
                assert base_offset == next_offset, f"{replica} batch {number}: base offset"
                assert leader_epoch >= 0
                assert have[8:12] == want[8:12], f"{replica} batch {number}: length"
                assert have[16:] == want[16:], f"{replica} batch {number}: bytes differ"
                records_count = struct.unpack_from(">i", have, 57)[0]
                next_offset += records_count

    assert CODEC_IDS[codec] in codecs_sent
    assert codecs_sent <= {CODEC_IDS[codec], CODEC_IDS["none"]}
