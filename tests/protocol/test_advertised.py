"""What ApiVersions advertises is served: every (api, version) has a handler and a codec.

And the ranges cover the newest version each of librdkafka, kafka-python, aiokafka and KafkaJS
sends, so no client falls back to an older request than it would use with Kafka.
"""

from __future__ import annotations

import io
from unittest.mock import MagicMock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType
from kio.static.primitive import Records

from brokers.protocol import lengths, schema
from brokers.protocol.dispatch import Dispatcher
from brokers.protocol.handlers import register_all


def broker_table() -> Dispatcher:
    table = Dispatcher()
    register_all(table, MagicMock())
    return table


# kio registers strategies for its primitives, except record sets.
st.register_type_strategy(Records, st.binary(max_size=64).map(Records))

TABLE = broker_table()
SERVED = [
    (key, version)
    for key, api in TABLE.apis.items()
    for version in range(api.min_version, api.max_version + 1)
]

# The newest version each client sends (librdkafka 2.16, kafka-python 3.0, aiokafka 0.14,
# KafkaJS 2.2), for the APIs a broker must serve to produce, consume and administer topics.
CLIENTS_NEWEST = {
    18: ("ApiVersions", [3, 4, 0, 2]),
    3: ("Metadata", [13, 13, 5, 6]),
    0: ("Produce", [10, 9, 7, 7]),
    1: ("Fetch", [16, 12, 11, 11]),
    2: ("ListOffsets", [7, 11, 3, 3]),
    19: ("CreateTopics", [4, 7, 3, 3]),
    20: ("DeleteTopics", [4, 6, 3, 1]),
    37: ("CreatePartitions", [2, 3, 1, 1]),
    32: ("DescribeConfigs", [1, 4, 2, 2]),
    33: ("AlterConfigs", [2, 2, 1, 1]),
    44: ("IncrementalAlterConfigs", [1, 1]),
    21: ("DeleteRecords", [2, 2, 2, 1]),
    22: ("InitProducerId", [4, 4, 0, 1]),
}
# Consumer groups: required once advertised.
GROUPS_NEWEST = {
    10: ("FindCoordinator", [2, 6, 1, 2]),
    11: ("JoinGroup", [5, 7, 5, 5]),
    14: ("SyncGroup", [3, 5, 3, 3]),
    12: ("Heartbeat", [3, 4, 1, 3]),
    13: ("LeaveGroup", [1, 5, 1, 3]),
    8: ("OffsetCommit", [9, 8, 3, 5]),
    9: ("OffsetFetch", [9, 8, 3, 4]),
    15: ("DescribeGroups", [5, 6, 3, 2]),
    16: ("ListGroups", [5, 5, 1, 2]),
    42: ("DeleteGroups", [2, 2, 1, 1]),
}
# Transactions: the newest version kafka-python 3.0, aiokafka 0.14 and KafkaJS 2.2 send
# (librdkafka's are exercised by tests/compat/test_transactions.py).
TRANSACTIONS_NEWEST = {
    24: ("AddPartitionsToTxn", [3, 0, 1]),
    25: ("AddOffsetsToTxn", [3, 0, 1]),
    26: ("EndTxn", [3, 0, 1]),
    28: ("TxnOffsetCommit", [3, 0, 1]),
}


@pytest.mark.parametrize(("key", "version"), SERVED)
def test_every_served_version_has_a_codec_and_a_handler(key: int, version: int) -> None:
    api = TABLE.apis[key]
    assert callable(api.handler)
    request_class = schema.request_class(key, version)
    response_class = schema.response_class(key, version)
    assert request_class.__api_key__ == key and request_class.__version__ == version
    assert response_class.__api_key__ == key and response_class.__version__ == version


@pytest.mark.parametrize(("key", "version"), SERVED)
@settings(
    max_examples=4,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_served_version_round_trips_through_kio(
    key: int, version: int, data: st.DataObject
) -> None:
    for cls in (schema.request_class(key, version), schema.response_class(key, version)):
        entity = data.draw(st.from_type(cls))
        buffer = io.BytesIO()
        entity_writer(cls)(buffer, entity)
        encoded = buffer.getvalue()
        decoded, size = entity_reader(cls)(encoded, 0)
        assert size == len(encoded)
        assert decoded == entity
        if cls.__type__ is EntityType.request:
            # The length check walks every request kio can read, to its last byte.
            assert lengths.check(cls, encoded, 0) == len(encoded)


@pytest.mark.parametrize("key", sorted(CLIENTS_NEWEST))
def test_clients_newest_versions_are_served(key: int) -> None:
    name, newest = CLIENTS_NEWEST[key]
    api = TABLE.apis.get(key)
    assert api is not None, f"{name} is not served"
    assert all(api.min_version <= v <= api.max_version for v in newest), (name, newest, api)


@pytest.mark.parametrize("key", sorted(GROUPS_NEWEST))
def test_group_apis_cover_clients(key: int) -> None:
    name, newest = GROUPS_NEWEST[key]
    api = TABLE.apis.get(key)
    assert api is not None, f"{name} is not served"
    assert all(api.min_version <= v <= api.max_version for v in newest), (name, newest, api)


@pytest.mark.parametrize("key", sorted(TRANSACTIONS_NEWEST))
def test_transaction_apis_cover_clients(key: int) -> None:
    name, newest = TRANSACTIONS_NEWEST[key]
    api = TABLE.apis.get(key)
    assert api is not None, f"{name} is not served"
    assert all(api.min_version <= v <= api.max_version for v in newest), (name, newest, api)


def test_librdkafka_finds_its_features() -> None:
    """librdkafka enables a feature only if exact old versions fall in the advertised ranges.

    Produce v0 (shown from v0 although served from v3) keeps gzip, snappy and lz4 on for
    librdkafka 2.0 to 2.7; FindCoordinator v0 enables lz4 and consumer groups.
    """
    produce = TABLE.apis[0]
    assert produce.advertised_min_version == 0
    coordinator = TABLE.apis.get(10)
    if coordinator is not None:
        assert coordinator.min_version == 0
