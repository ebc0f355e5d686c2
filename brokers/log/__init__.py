"""Storage engine: partition logs on disk in Kafka's formats, with Kafka's semantics."""

from brokers.log.config import TOPIC_CONFIGS, LogConfig
from brokers.log.log import AppendInfo, Log, ReadSlice
from brokers.log.manager import LogManager
from brokers.log.producer_state import AppendOrigin

__all__ = [
    "TOPIC_CONFIGS",
    "AppendInfo",
    "AppendOrigin",
    "Log",
    "LogConfig",
    "LogManager",
    "ReadSlice",
]
