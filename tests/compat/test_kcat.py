"""kcat produces (-P) and consumes (-C) unmodified, with every codec its librdkafka has."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory
from tests.compat.records import (
    CODECS,
    Consumed,
    Rec,
    assert_read_back,
    make_records,
    stored_codecs,
)

# `make test` installs kcat (Debian's package); without it these tests fail rather than skip.
pytestmark = pytest.mark.cluster


def kcat(*args: str, stdin: bytes | None = None, timeout_s: float = 120) -> bytes:
    result = subprocess.run(
        ["kcat", "-q", *args], input=stdin, capture_output=True, timeout=timeout_s, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(
    cluster: Cluster,
    new_topic: TopicFactory,
    codec: str,
) -> None:
    topic = new_topic()
    bootstrap = cluster.spec.bootstrap_servers
    headers = (("origin", f"kcat-{codec}".encode()), ("kind", b"compat"))
    # kcat stamps each record with the time it was produced, and gives all the same headers.
    records = [Rec(r.key, r.value.strip(), headers, 0) for r in make_records(f"kcat-{codec}")]
    lines = b"".join(r.key + b"\t" + r.value + b"\n" for r in records)

    started = int(time.time() * 1000)
    kcat(
        "-P",
        "-b",
        bootstrap,
        "-t",
        topic,
        "-K",
        "\\t",
        *(arg for name, value in headers for arg in ("-H", f"{name}={value.decode()}")),
        "-z",
        codec,
        "-X",
        "partitioner=murmur2_random",
        "-X",
        "enable.idempotence=true",
        "-X",
        "linger.ms=5",
        stdin=lines,
    )
    finished = int(time.time() * 1000)

    output = kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J")
    consumed = []
    for line in output.splitlines():
        m = json.loads(line)
        assert m["tstype"] == "create"
        assert started - 1000 <= m["ts"] <= finished + 1000
        flat = m["headers"]
        got_headers = tuple((flat[i], flat[i + 1].encode()) for i in range(0, len(flat), 2))
        consumed.append(
            Consumed(
                m["partition"],
                m["offset"],
                Rec(m["key"].encode(), m["payload"].encode(), got_headers, 0),
            )
        )
    assert_read_back(records, consumed)

    stored = stored_codecs(cluster.spec.data_dir, topic)
    assert set(stored) <= {codec, "none"}
    assert stored[codec] > 0, stored
