"""Topic configs: Kafka's names, defaults, types, validation messages and documentation."""

from __future__ import annotations

from dataclasses import fields

import pytest

from brokers.log.config import TOPIC_CONFIGS, ConfigType, LogConfig
from brokers.log.errors import InvalidConfigError


def test_defaults_are_kafkas() -> None:
    config = LogConfig()
    assert config.segment_bytes == 1024**3
    assert config.segment_ms == 7 * 24 * 3600 * 1000
    assert config.segment_index_bytes == 10 * 1024 * 1024
    assert config.index_interval_bytes == 4096
    assert config.retention_ms == 7 * 24 * 3600 * 1000
    assert config.retention_bytes == -1
    assert config.cleanup_policy == ("delete",)
    assert config.delete_retention_ms == 86_400_000
    assert config.max_message_bytes == 1_048_588
    assert config.flush_messages == 2**63 - 1
    assert config.message_timestamp_type == "CreateTime"
    assert config.compression_type == "producer"
    assert config.min_insync_replicas == 1
    assert config.unclean_leader_election_enable is False
    assert config.file_delete_delay_ms == 60_000
    assert config.min_cleanable_dirty_ratio == 0.5


def test_every_config_has_a_definition_with_the_same_default() -> None:
    defaults = LogConfig()
    names = {f.name for f in fields(LogConfig)} - {"overridden"}
    assert {n.replace(".", "_") for n in TOPIC_CONFIGS} == names
    for name, definition in TOPIC_CONFIGS.items():
        assert definition.default == getattr(defaults, name.replace(".", "_")), name
        assert definition.documentation
        assert isinstance(definition.type, ConfigType)


def test_from_properties_parses_each_type() -> None:
    config = LogConfig.from_properties(
        {
            "cleanup.policy": "compact, delete",
            "retention.ms": "-1",
            "min.cleanable.dirty.ratio": "0.25",
            "preallocate": "TRUE",
            "message.timestamp.type": "LogAppendTime",
        }
    )
    assert config.cleanup_policy == ("compact", "delete")
    assert config.compact and config.delete
    assert config.retention_ms == -1
    assert config.min_cleanable_dirty_ratio == 0.25
    assert config.preallocate is True
    assert config.log_append_time
    assert config.overridden == {
        "cleanup.policy",
        "retention.ms",
        "min.cleanable.dirty.ratio",
        "preallocate",
        "message.timestamp.type",
    }


def test_broker_defaults_sit_under_topic_overrides() -> None:
    config = LogConfig.from_properties(
        {"retention.ms": "1000"}, defaults={"retention.ms": "5000", "segment.bytes": "2048"}
    )
    assert config.retention_ms == 1000
    assert config.segment_bytes == 2048
    entries = {e.name: e for e in config.entries()}
    assert entries["retention.ms"].value == "1000"
    assert not entries["retention.ms"].is_default
    assert entries["segment.bytes"].is_default
    assert entries["cleanup.policy"].value == "delete"
    assert len(entries) == len(TOPIC_CONFIGS)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "segment.bytes",
            "abc",
            "Invalid value abc for configuration segment.bytes: Not a number of type INT",
        ),
        ("segment.bytes", "3000000000", "Not a number of type INT"),
        (
            "segment.bytes",
            "10",
            "Invalid value 10 for configuration segment.bytes: Value must be at least 14",
        ),
        ("retention.ms", "-2", "Value must be at least -1"),
        ("min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"),
        ("min.cleanable.dirty.ratio", "x", "Not a number of type DOUBLE"),
        ("preallocate", "yes", "Expected value to be either true or false"),
        (
            "compression.type",
            "brotli",
            "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
        ),
        ("cleanup.policy", "compact,forever", "String must be one of: compact, delete"),
        ("message.timestamp.type", "Now", "String must be one of: CreateTime, LogAppendTime"),
        ("no.such.config", "1", "Unknown topic config name: no.such.config"),
    ],
)
def test_invalid_values_name_the_config_and_why(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        LogConfig.from_properties({name: value})
    assert message in str(caught.value)
    assert caught.value.name == name
    assert caught.value.error_code == 40


def test_compaction_lags_must_agree() -> None:
    with pytest.raises(InvalidConfigError, match=r"min\.compaction\.lag\.ms"):
        LogConfig.from_properties({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"})


def test_with_overrides_keeps_earlier_overrides() -> None:
    config = LogConfig.from_properties({"retention.ms": "1000"})
    changed = config.with_overrides({"segment.ms": "5000"})
    assert (changed.retention_ms, changed.segment_ms) == (1000, 5000)
    assert changed.overridden == {"retention.ms", "segment.ms"}
    assert changed.value_of("segment.ms") == "5000"
