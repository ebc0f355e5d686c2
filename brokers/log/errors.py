"""Storage errors, each carrying the Kafka error code a broker answers with."""

from __future__ import annotations

from typing import ClassVar


class LogError(Exception):
    """A storage failure that maps onto one Kafka protocol error code."""

    error_code: ClassVar[int] = -1  # UNKNOWN_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OffsetOutOfRangeError(LogError):
    error_code = 1  # OFFSET_OUT_OF_RANGE


class CorruptRecordError(LogError):
    error_code = 2  # CORRUPT_MESSAGE


class RecordTooLargeError(LogError):
    error_code = 10  # MESSAGE_TOO_LARGE


class InvalidTopicError(LogError):
    error_code = 17  # INVALID_TOPIC_EXCEPTION


class RecordBatchTooLargeError(LogError):
    error_code = 18  # RECORD_LIST_TOO_LARGE


class InvalidTimestampError(LogError):
    error_code = 32  # INVALID_TIMESTAMP


class InvalidConfigError(LogError):
    error_code = 40  # INVALID_CONFIG

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class UnsupportedMessageFormatError(LogError):
    error_code = 43  # UNSUPPORTED_FOR_MESSAGE_FORMAT


class OutOfOrderSequenceError(LogError):
    error_code = 45  # OUT_OF_ORDER_SEQUENCE_NUMBER


class InvalidProducerEpochError(LogError):
    error_code = 47  # INVALID_PRODUCER_EPOCH


class TransactionCoordinatorFencedError(LogError):
    error_code = 52  # TRANSACTION_COORDINATOR_FENCED


class KafkaStorageError(LogError):
    error_code = 56  # KAFKA_STORAGE_ERROR


class UnknownProducerIdError(LogError):
    error_code = 59  # UNKNOWN_PRODUCER_ID


class InvalidRecordError(LogError):
    error_code = 87  # INVALID_RECORD
