"""Topic-level log configuration: Kafka's names, types, defaults, validation and documentation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from brokers.log.errors import InvalidConfigError

INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
LONG_MAX = 2**63 - 1
LONG_MIN = -(2**63)

COMPACT = "compact"
DELETE = "delete"
CREATE_TIME = "CreateTime"
LOG_APPEND_TIME = "LogAppendTime"
COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")


class ConfigType(Enum):
    BOOLEAN = "boolean"
    STRING = "string"
    INT = "int"
    LONG = "long"
    DOUBLE = "double"
    LIST = "list"
    CLASS = "class"
    PASSWORD = "password"


ConfigValue = bool | str | int | float | tuple[str, ...]
Validator = Callable[[str, ConfigValue], None]


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One topic config as Kafka documents it (DescribeConfigs reports these)."""

    name: str
    type: ConfigType
    default: ConfigValue
    documentation: str
    validator: Validator | None = None
    server_default_property: str | None = None

    def parse(self, raw: str) -> ConfigValue:
        """Parse a string value the way Kafka's ConfigDef.parseType does, then validate it."""
        value = _parse(self.name, self.type, raw)
        if self.validator is not None:
            self.validator(self.name, value)
        return value


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """A config's current value for a topic, and whether it is the default."""

    name: str
    value: str
    is_default: bool
    definition: ConfigDef


def _invalid(name: str, raw: object, why: str) -> InvalidConfigError:
    return InvalidConfigError(name, f"Invalid value {raw} for configuration {name}: {why}")


def _parse(name: str, kind: ConfigType, raw: str) -> ConfigValue:
    text = raw.strip()
    if kind is ConfigType.BOOLEAN:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise _invalid(name, raw, "Expected value to be either true or false")
    if kind in (ConfigType.INT, ConfigType.LONG):
        low, high = (INT_MIN, INT_MAX) if kind is ConfigType.INT else (LONG_MIN, LONG_MAX)
        try:
            number = int(text, 10)
        except ValueError:
            number = None
        if number is None or not low <= number <= high or "_" in text:
            raise _invalid(name, raw, f"Not a number of type {kind.name}")
        return number
    if kind is ConfigType.DOUBLE:
        try:
            real = float(text)
        except ValueError:
            real = math.nan
        if math.isnan(real):
            raise _invalid(name, raw, "Not a number of type DOUBLE")
        return real
    if kind is ConfigType.LIST:
        return tuple(item.strip() for item in text.split(",")) if text else ()
    return text


def _format(value: ConfigValue) -> str:
    """Render a value as Kafka shows it in DescribeConfigs."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def at_least(minimum: int) -> Validator:
    def check(name: str, value: ConfigValue) -> None:
        if isinstance(value, int | float) and value < minimum:
            raise _invalid(name, _format(value), f"Value must be at least {minimum}")

    return check


def between(minimum: float, maximum: float) -> Validator:
    def check(name: str, value: ConfigValue) -> None:
        if isinstance(value, int | float):
            if value < minimum:
                raise _invalid(name, _format(value), f"Value must be at least {minimum}")
            if value > maximum:
                raise _invalid(name, _format(value), f"Value must be no more than {maximum}")

    return check


def one_of(*choices: str) -> Validator:
    def check(name: str, value: ConfigValue) -> None:
        if value not in choices:
            raise _invalid(name, value, "String must be one of: " + ", ".join(choices))

    return check


def list_of(*choices: str) -> Validator:
    def check(name: str, value: ConfigValue) -> None:
        items = value if isinstance(value, tuple) else (str(value),)
        wrong = [item for item in items if item not in choices]
        if wrong:
            shown = "[" + ", ".join(wrong) + "]"
            raise _invalid(name, shown, "String must be one of: " + ", ".join(choices))

    return check


def _gzip_level(name: str, value: ConfigValue) -> None:
    if value != -1 and not (isinstance(value, int) and 1 <= value <= 9):
        raise _invalid(name, value, "Value must be -1 or between 1 and 9")


def _throttled_replicas(name: str, value: ConfigValue) -> None:
    items = value if isinstance(value, tuple) else ()
    if items == ("*",):
        return
    for item in items:
        parts = item.split(":")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise _invalid(
                name,
                _format(value),
                "must be the literal '*' or a list of replicas in the following format: "
                "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
            )


_DEFS: Sequence[ConfigDef] = (
    ConfigDef(
        "cleanup.policy",
        ConfigType.LIST,
        (DELETE,),
        'This config designates the retention policy to use on log segments. The "delete" policy '
        "(which is the default) will discard old segments when their retention time or size "
        'limit has been reached. The "compact" policy will enable log compaction, which retains '
        "the latest value for each key. It is also possible to specify both policies in a "
        'comma-separated list (e.g. "delete,compact"). In this case, old segments will be '
        "discarded per the retention time and size configuration, while retained segments will "
        "be compacted.",
        list_of(COMPACT, DELETE),
        "log.cleanup.policy",
    ),
    ConfigDef(
        "compression.gzip.level",
        ConfigType.INT,
        -1,
        "The compression level to use if compression.type is set to gzip.",
        _gzip_level,
        "compression.gzip.level",
    ),
    ConfigDef(
        "compression.lz4.level",
        ConfigType.INT,
        9,
        "The compression level to use if compression.type is set to lz4.",
        between(1, 17),
        "compression.lz4.level",
    ),
    ConfigDef(
        "compression.type",
        ConfigType.STRING,
        "producer",
        "Specify the final compression type for a given topic. This configuration accepts the "
        "standard compression codecs ('gzip', 'snappy', 'lz4', 'zstd'). It additionally accepts "
        "'uncompressed' which is equivalent to no compression; and 'producer' which means "
        "retain the original compression codec set by the producer.",
        one_of(*COMPRESSION_TYPES),
        "compression.type",
    ),
    ConfigDef(
        "compression.zstd.level",
        ConfigType.INT,
        3,
        "The compression level to use if compression.type is set to zstd.",
        between(-131072, 22),
        "compression.zstd.level",
    ),
    ConfigDef(
        "delete.retention.ms",
        ConfigType.LONG,
        86_400_000,
        "The amount of time to retain delete tombstone markers for log compacted topics. This "
        "setting also gives a bound on the time in which a consumer must complete a read if "
        "they begin from offset 0 to ensure that they get a valid snapshot of the final stage "
        "(otherwise delete tombstones may be collected before they complete their scan).",
        at_least(0),
        "log.cleaner.delete.retention.ms",
    ),
    ConfigDef(
        "file.delete.delay.ms",
        ConfigType.LONG,
        60_000,
        "The time to wait before deleting a file from the filesystem.",
        at_least(0),
        "log.segment.delete.delay.ms",
    ),
    ConfigDef(
        "flush.messages",
        ConfigType.LONG,
        LONG_MAX,
        "This setting allows specifying an interval at which we will force an fsync of data "
        "written to the log. For example if this was set to 1 we would fsync after every "
        "message; if it were 5 we would fsync after every five messages. In general we "
        "recommend you not set this and use replication for durability and allow the "
        "operating system's background flush capabilities as it is more efficient.",
        at_least(1),
        "log.flush.interval.messages",
    ),
    ConfigDef(
        "flush.ms",
        ConfigType.LONG,
        LONG_MAX,
        "This setting allows specifying a time interval at which we will force an fsync of "
        "data written to the log. For example if this was set to 1000 we would fsync after "
        "1000 ms had passed. In general we recommend you not set this and use replication for "
        "durability and allow the operating system's background flush capabilities as it is "
        "more efficient.",
        at_least(0),
        "log.flush.interval.ms",
    ),
    ConfigDef(
        "follower.replication.throttled.replicas",
        ConfigType.LIST,
        (),
        "A list of replicas for which log replication should be throttled on the follower "
        "side. The list should describe a set of replicas in the form "
        "[PartitionId]:[BrokerId],[PartitionId]:[BrokerId]:... or alternatively the wildcard "
        "'*' can be used to throttle all replicas for this topic.",
        _throttled_replicas,
        "follower.replication.throttled.replicas",
    ),
    ConfigDef(
        "index.interval.bytes",
        ConfigType.INT,
        4096,
        "This setting controls how frequently Kafka adds an index entry to its offset index. "
        "The default setting ensures that we index a message roughly every 4096 bytes. More "
        "indexing allows reads to jump closer to the exact position in the log but makes the "
        "index larger. You probably don't need to change this.",
        at_least(0),
        "log.index.interval.bytes",
    ),
    ConfigDef(
        "leader.replication.throttled.replicas",
        ConfigType.LIST,
        (),
        "A list of replicas for which log replication should be throttled on the leader side. "
        "The list should describe a set of replicas in the form "
        "[PartitionId]:[BrokerId],[PartitionId]:[BrokerId]:... or alternatively the wildcard "
        "'*' can be used to throttle all replicas for this topic.",
        _throttled_replicas,
        "leader.replication.throttled.replicas",
    ),
    ConfigDef(
        "local.retention.bytes",
        ConfigType.LONG,
        -2,
        "The maximum size of local log segments that can grow for a partition before it "
        "deletes the old segments. Default value is -2, it represents `retention.bytes` value "
        "to be used.",
        at_least(-2),
        "log.local.retention.bytes",
    ),
    ConfigDef(
        "local.retention.ms",
        ConfigType.LONG,
        -2,
        "The number of milliseconds to keep the local log segment before it gets deleted. "
        "Default value is -2, it represents `retention.ms` value is to be used.",
        at_least(-2),
        "log.local.retention.ms",
    ),
    ConfigDef(
        "max.compaction.lag.ms",
        ConfigType.LONG,
        LONG_MAX,
        "The maximum time a message will remain ineligible for compaction in the log. Only "
        "applicable for logs that are being compacted.",
        at_least(1),
        "log.cleaner.max.compaction.lag.ms",
    ),
    ConfigDef(
        "max.message.bytes",
        ConfigType.INT,
        1_048_588,
        "The largest record batch size allowed by Kafka (after compression if compression is "
        "enabled).",
        at_least(0),
        "message.max.bytes",
    ),
    ConfigDef(
        "message.downconversion.enable",
        ConfigType.BOOLEAN,
        True,
        "This configuration controls whether down-conversion of message formats is enabled to "
        "satisfy consume requests.",
        None,
        "log.message.downconversion.enable",
    ),
    ConfigDef(
        "message.format.version",
        ConfigType.STRING,
        "3.0-IV1",
        "[DEPRECATED] Specify the message format version the broker will use to append "
        "messages to the logs. Every value is treated as 3.0: record batches of magic 2.",
        None,
        "log.message.format.version",
    ),
    ConfigDef(
        "message.timestamp.after.max.ms",
        ConfigType.LONG,
        LONG_MAX,
        "This configuration sets the allowable timestamp difference between the message "
        "timestamp and the broker's timestamp. The message timestamp can be later than or "
        "equal to the broker's timestamp, with the maximum allowable difference determined by "
        "the value set in this configuration. If message.timestamp.type=CreateTime, the "
        "message will be rejected if the difference in timestamps exceeds this specified "
        "threshold. This configuration is ignored if message.timestamp.type=LogAppendTime.",
        at_least(0),
        "log.message.timestamp.after.max.ms",
    ),
    ConfigDef(
        "message.timestamp.before.max.ms",
        ConfigType.LONG,
        LONG_MAX,
        "This configuration sets the allowable timestamp difference between the broker's "
        "timestamp and the message timestamp. The message timestamp can be earlier than or "
        "equal to the broker's timestamp, with the maximum allowable difference determined by "
        "the value set in this configuration. If message.timestamp.type=CreateTime, the "
        "message will be rejected if the difference in timestamps exceeds this specified "
        "threshold. This configuration is ignored if message.timestamp.type=LogAppendTime.",
        at_least(0),
        "log.message.timestamp.before.max.ms",
    ),
    ConfigDef(
        "message.timestamp.difference.max.ms",
        ConfigType.LONG,
        LONG_MAX,
        "[DEPRECATED] The maximum difference allowed between the timestamp when a broker "
        "receives a message and the timestamp specified in the message. Superseded by "
        "message.timestamp.before.max.ms and message.timestamp.after.max.ms.",
        at_least(0),
        "log.message.timestamp.difference.max.ms",
    ),
    ConfigDef(
        "message.timestamp.type",
        ConfigType.STRING,
        CREATE_TIME,
        "Define whether the timestamp in the message is message create time or log append "
        "time. The value should be either `CreateTime` or `LogAppendTime`.",
        one_of(CREATE_TIME, LOG_APPEND_TIME),
        "log.message.timestamp.type",
    ),
    ConfigDef(
        "min.cleanable.dirty.ratio",
        ConfigType.DOUBLE,
        0.5,
        "This configuration controls how frequently the log compactor will attempt to clean "
        "the log (assuming log compaction is enabled). By default we will avoid cleaning a log "
        "where more than 50% of the log has been compacted. This ratio bounds the maximum "
        "space wasted in the log by duplicates (at 50% at most 50% of the log could be "
        "duplicates). If the max.compaction.lag.ms or the min.compaction.lag.ms "
        "configurations are also specified, then the log compactor considers the log to be "
        "eligible for compaction as soon as either: (i) the dirty ratio threshold has been met "
        "and the log has had dirty (uncompacted) records for at least the "
        "min.compaction.lag.ms duration, or (ii) if the log has had dirty (uncompacted) "
        "records for at most the max.compaction.lag.ms period.",
        between(0, 1),
        "log.cleaner.min.cleanable.ratio",
    ),
    ConfigDef(
        "min.compaction.lag.ms",
        ConfigType.LONG,
        0,
        "The minimum time a message will remain uncompacted in the log. Only applicable for "
        "logs that are being compacted.",
        at_least(0),
        "log.cleaner.min.compaction.lag.ms",
    ),
    ConfigDef(
        "min.insync.replicas",
        ConfigType.INT,
        1,
        'When a producer sets acks to "all" (or "-1"), this configuration specifies the '
        "minimum number of replicas that must acknowledge a write for the write to be "
        "considered successful. If this minimum cannot be met, then the producer will raise an "
        "exception (either NotEnoughReplicas or NotEnoughReplicasAfterAppend).",
        at_least(1),
        "min.insync.replicas",
    ),
    ConfigDef(
        "preallocate",
        ConfigType.BOOLEAN,
        False,
        "True if we should preallocate the file on disk when creating a new log segment.",
        None,
        "log.preallocate",
    ),
    ConfigDef(
        "remote.log.copy.disable",
        ConfigType.BOOLEAN,
        False,
        "Determines whether tiered data for a topic should become read only, and no more data "
        "uploading on a topic.",
        None,
        None,
    ),
    ConfigDef(
        "remote.log.delete.on.disable",
        ConfigType.BOOLEAN,
        False,
        "Determines whether tiered data for a topic should be deleted after tiered storage is "
        "disabled on a topic.",
        None,
        None,
    ),
    ConfigDef(
        "remote.storage.enable",
        ConfigType.BOOLEAN,
        False,
        "To enable tiered storage for a topic, set this configuration as true.",
        None,
        None,
    ),
    ConfigDef(
        "retention.bytes",
        ConfigType.LONG,
        -1,
        "This configuration controls the maximum size a partition (which consists of log "
        "segments) can grow to before we will discard old log segments to free up space if we "
        'are using the "delete" retention policy. By default there is no size limit only a '
        "time limit. Since this limit is enforced at the partition level, multiply it by the "
        "number of partitions to compute the topic retention in bytes.",
        None,
        "log.retention.bytes",
    ),
    ConfigDef(
        "retention.ms",
        ConfigType.LONG,
        604_800_000,
        "This configuration controls the maximum time we will retain a log before we will "
        'discard old log segments to free up space if we are using the "delete" retention '
        "policy. This represents an SLA on how soon consumers must read their data. If set to "
        "-1, no time limit is applied.",
        at_least(-1),
        "log.retention.ms",
    ),
    ConfigDef(
        "segment.bytes",
        ConfigType.INT,
        1_073_741_824,
        "This configuration controls the segment file size for the log. Retention and cleaning "
        "is always done a file at a time so a larger segment size means fewer files but less "
        "granular control over retention.",
        at_least(14),
        "log.segment.bytes",
    ),
    ConfigDef(
        "segment.index.bytes",
        ConfigType.INT,
        10_485_760,
        "This configuration controls the size of the index that maps offsets to file "
        "positions. We preallocate this index file and shrink it only after log rolls. You "
        "generally should not need to change this setting.",
        at_least(4),
        "log.index.size.max.bytes",
    ),
    ConfigDef(
        "segment.jitter.ms",
        ConfigType.LONG,
        0,
        "The maximum random jitter subtracted from the scheduled segment roll time to avoid "
        "thundering herds of segment rolling",
        at_least(0),
        "log.roll.jitter.ms",
    ),
    ConfigDef(
        "segment.ms",
        ConfigType.LONG,
        604_800_000,
        "This configuration controls the period of time after which Kafka will force the log "
        "to roll even if the segment file isn't full to ensure that retention can delete or "
        "compact old data.",
        at_least(1),
        "log.roll.ms",
    ),
    ConfigDef(
        "unclean.leader.election.enable",
        ConfigType.BOOLEAN,
        False,
        "Indicates whether to enable replicas not in the ISR set to be elected as leader as a "
        "last resort, even though doing so may result in data loss.",
        None,
        "unclean.leader.election.enable",
    ),
)

TOPIC_CONFIGS: Mapping[str, ConfigDef] = MappingProxyType({d.name: d for d in _DEFS})


def _attribute(name: str) -> str:
    return name.replace(".", "_")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """A topic's effective log configuration; attribute names are Kafka's with `_` for `.`."""

    cleanup_policy: tuple[str, ...] = (DELETE,)
    compression_gzip_level: int = -1
    compression_lz4_level: int = 9
    compression_type: str = "producer"
    compression_zstd_level: int = 3
    delete_retention_ms: int = 86_400_000
    file_delete_delay_ms: int = 60_000
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    follower_replication_throttled_replicas: tuple[str, ...] = ()
    index_interval_bytes: int = 4096
    leader_replication_throttled_replicas: tuple[str, ...] = ()
    local_retention_bytes: int = -2
    local_retention_ms: int = -2
    max_compaction_lag_ms: int = LONG_MAX
    max_message_bytes: int = 1_048_588
    message_downconversion_enable: bool = True
    message_format_version: str = "3.0-IV1"
    message_timestamp_after_max_ms: int = LONG_MAX
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_difference_max_ms: int = LONG_MAX
    message_timestamp_type: str = CREATE_TIME
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    min_insync_replicas: int = 1
    preallocate: bool = False
    remote_log_copy_disable: bool = False
    remote_log_delete_on_disable: bool = False
    remote_storage_enable: bool = False
    retention_bytes: int = -1
    retention_ms: int = 604_800_000
    segment_bytes: int = 1_073_741_824
    segment_index_bytes: int = 10_485_760
    segment_jitter_ms: int = 0
    segment_ms: int = 604_800_000
    unclean_leader_election_enable: bool = False
    # Names set at the topic level (the rest come from broker defaults or Kafka's own).
    overridden: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def from_properties(
        cls, overrides: Mapping[str, str], defaults: Mapping[str, str] | None = None
    ) -> LogConfig:
        """Build a config from topic overrides on top of broker-level defaults.

        Raises InvalidConfigError naming the config for an unknown name, a value of the wrong
        type, or a value out of range, with Kafka's wording.
        """
        values: dict[str, ConfigValue] = {}
        for source in (defaults or {}, overrides):
            for name, raw in source.items():
                definition = TOPIC_CONFIGS.get(name)
                if definition is None:
                    raise InvalidConfigError(name, f"Unknown topic config name: {name}")
                values[_attribute(name)] = definition.parse(str(raw))
        config = cls(**values, overridden=frozenset(overrides))  # type: ignore[arg-type]
        if config.min_compaction_lag_ms > config.max_compaction_lag_ms:
            raise InvalidConfigError(
                "min.compaction.lag.ms",
                f"conflict topic config setting min.compaction.lag.ms "
                f"({config.min_compaction_lag_ms}) > max.compaction.lag.ms "
                f"({config.max_compaction_lag_ms})",
            )
        return config

    def with_overrides(self, overrides: Mapping[str, str]) -> LogConfig:
        """This config with more topic-level overrides applied."""
        current = {name: self.value_of(name) for name in self.overridden}
        return LogConfig.from_properties({**current, **overrides}, self.to_properties())

    def value_of(self, name: str) -> str:
        """The value of a topic config as Kafka renders it (DescribeConfigs)."""
        if name not in TOPIC_CONFIGS:
            raise InvalidConfigError(name, f"Unknown topic config name: {name}")
        value: ConfigValue = getattr(self, _attribute(name))
        return _format(value)

    def to_properties(self) -> dict[str, str]:
        """Every topic config and its value as strings."""
        return {name: self.value_of(name) for name in TOPIC_CONFIGS}

    def entries(self) -> list[ConfigEntry]:
        """Every topic config with its value and whether it was set for this topic."""
        return [
            ConfigEntry(name, self.value_of(name), name not in self.overridden, definition)
            for name, definition in TOPIC_CONFIGS.items()
        ]

    @property
    def compact(self) -> bool:
        return COMPACT in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return DELETE in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == LOG_APPEND_TIME
