"""confluent-kafka (librdkafka) produces and consumes unmodified, with every codec it has."""

from __future__ import annotations

import pytest

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory, consume, produce
from tests.compat.records import (
    CODECS,
    assert_partitions,
    assert_read_back,
    make_records,
    stored_codecs,
)

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(
    cluster: Cluster,
    new_topic: TopicFactory,
    codec: str,
) -> None:
    topic = new_topic()
    records = make_records(f"confluent-{codec}")
    bootstrap = cluster.spec.bootstrap_servers

    placed = produce(bootstrap, topic, records, **{"compression.type": codec})
    assert_partitions(placed)
    assert_read_back(records, consume(bootstrap, topic, len(records)))

    stored = stored_codecs(cluster.spec.data_dir, topic)
    assert set(stored) <= {codec, "none"}
    assert stored[codec] > 0, stored
