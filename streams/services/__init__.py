"""Writes: every change the UI, the JSON API and the CLI make goes through these functions."""

from streams.services.cluster import (
    ClusterServiceError,
    broker_decommission,
    leaders_elect_preferred,
)
from streams.services.groups import (
    GroupNotEmpty,
    GroupServiceError,
    OffsetReset,
    ResetStrategy,
    group_delete,
    group_offsets_reset,
    lag_publish,
)
from streams.services.kafka import ServiceError
from streams.services.live import cluster_stats_publish
from streams.services.messages import (
    Scan,
    ScanQuery,
    ScanState,
    Tail,
    TextFilter,
    message_get,
    scan_cancel,
    scan_read,
    scan_read_async,
    scan_run,
    scan_start,
)
from streams.services.produce import Delivery, message_produce
from streams.services.topics import (
    TopicConfigEntry,
    topic_configs_alter,
    topic_configs_describe,
    topic_create,
    topic_delete,
    topic_partitions_create,
)

__all__ = (
    "ClusterServiceError",
    "Delivery",
    "GroupNotEmpty",
    "GroupServiceError",
    "OffsetReset",
    "ResetStrategy",
    "Scan",
    "ScanQuery",
    "ScanState",
    "ServiceError",
    "Tail",
    "TextFilter",
    "TopicConfigEntry",
    "broker_decommission",
    "cluster_stats_publish",
    "group_delete",
    "group_offsets_reset",
    "lag_publish",
    "leaders_elect_preferred",
    "message_get",
    "message_produce",
    "scan_cancel",
    "scan_read",
    "scan_read_async",
    "scan_run",
    "scan_start",
    "topic_configs_alter",
    "topic_configs_describe",
    "topic_create",
    "topic_delete",
    "topic_partitions_create",
)
