"""The OpenAPI 3 description of the JSON API, served at /api/openapi.json and shown at /api/."""

from __future__ import annotations

from typing import Any

from streams.forms import COMMON_CONFIGS, RESET_STRATEGIES
from streams.selectors import GROUP_SORTS, TOPIC_SORTS
from streams.services.messages import MAX_LIMIT, SEEKS
from streams.services.produce import ACKS, COMPRESSIONS, MAX_COUNT


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _json(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERRORS = {
    "400": _json(_ref("Error"), "Invalid input, or the cluster refused (the broker's message)."),
    "401": _json(_ref("Error"), "Not authenticated."),
    "403": _json(_ref("Error"), "Authenticated but not staff (viewers cannot change anything)."),
    "404": _json(_ref("Error"), "No such topic, group or message."),
}
READ_ERRORS = {k: ERRORS[k] for k in ("400", "401", "404")}
TOPIC = _path("name", "Topic name")
GROUP = _path("group_id", "Consumer group id")
PAGE = [
    _query("page", "Page number, from 1", {"type": "integer", "default": 1}),
    _query("page_size", "Rows per page (≤ 1000)", {"type": "integer", "default": 100}),
    _query("order", "Sort order", {"type": "string", "enum": ["asc", "desc"]}),
]
SEARCH = [
    _query("partition", "One partition (default: all)", {"type": "integer"}),
    _query("seek", "Where to start", {"type": "string", "enum": list(SEEKS), "default": "latest"}),
    _query("offset", "With seek=offset", {"type": "integer"}),
    _query(
        "timestamp",
        "With seek=timestamp: UTC, YYYY-MM-DDTHH:MM[:SS]",
        {"type": "string", "format": "date-time"},
    ),
    _query(
        "limit",
        f"Most messages to return (≤ {MAX_LIMIT:,})",
        {"type": "integer", "default": 100},
    ),
    _query("key", "Keep messages whose key matches", {"type": "string"}),
    _query("key_mode", "How key matches", {"type": "string", "enum": ["contains", "regex"]}),
    _query("value", "Keep messages whose value matches", {"type": "string"}),
    _query("value_mode", "How value matches", {"type": "string", "enum": ["contains", "regex"]}),
    _query("ignore_case", "Filters ignore ASCII case", {"type": "boolean"}),
    _query("header", "name, or name=value (substring)", {"type": "string"}),
    _query(
        "format",
        "json (default) or a csv/json download",
        {"type": "string", "enum": ["csv", "json"]},
    ),
]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": True},
        },
    },
    "Rates": {
        "type": "object",
        "properties": {
            "bytes_in_per_s": {"type": "number"},
            "messages_in_per_s": {"type": "number"},
            "bytes_out_per_s": {"type": "number"},
        },
    },
    "TopicRow": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "internal": {"type": "boolean"},
            "partitions": {"type": "integer"},
            "replication_factor": {"type": "integer"},
            "under_replicated": {"type": "integer"},
            "offline": {"type": "integer"},
            "size": {"type": "integer", "nullable": True},
            "messages": {"type": "integer", "nullable": True},
            "rates": _ref("Rates"),
        },
    },
    "Partition": {
        "type": "object",
        "properties": {
            "partition": {"type": "integer"},
            "leader": {"type": "integer", "nullable": True},
            "leader_epoch": {"type": "integer"},
            "replicas": {"type": "array", "items": {"type": "integer"}},
            "isr": {"type": "array", "items": {"type": "integer"}},
            "log_start": {"type": "integer"},
            "high_watermark": {"type": "integer"},
            "log_end": {"type": "integer"},
            "size": {"type": "integer"},
        },
    },
    "Topic": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "topic_id": {"type": "string"},
            "internal": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "replication_factor": {"type": "integer"},
            "configs": {"type": "object", "additionalProperties": {"type": "string"}},
            "partitions": {"type": "array", "items": _ref("Partition")},
        },
    },
    "NewTopic": {
        "type": "object",
        "required": ["name", "partitions"],
        "properties": {
            "name": {"type": "string", "example": "orders"},
            "partitions": {"type": "integer", "example": 3},
            "replication_factor": {
                "type": "integer",
                "description": "Omit for the default, min(3, live brokers).",
            },
            "configs": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Kafka topic configs, e.g. "
                + ", ".join(name for name, _ in COMMON_CONFIGS[:4]),
                "example": {"retention.ms": "86400000"},
            },
        },
    },
    "ConfigEntry": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string", "nullable": True},
            "source": {"type": "string", "enum": ["topic", "broker", "default"]},
            "read_only": {"type": "boolean"},
            "sensitive": {"type": "boolean"},
        },
    },
    "Message": {
        "type": "object",
        "properties": {
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
            "timestamp": {"type": "integer", "description": "unix ms"},
            "timestamp_iso": {"type": "string", "format": "date-time"},
            "key": {
                "type": "string",
                "nullable": True,
                "description": "UTF-8 (invalid bytes replaced)",
            },
            "value": {"type": "string", "nullable": True},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "value_size": {"type": "integer", "nullable": True},
        },
    },
    "ScanSummary": {
        "type": "object",
        "properties": {
            "scanned": {"type": "integer", "description": "records the brokers read"},
            "to_scan": {"type": "integer"},
            "matches": {"type": "integer"},
            "elapsed_s": {"type": "number"},
            "records_per_s": {"type": "integer", "nullable": True},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Produce": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "Empty or absent: no key."},
            "value": {"type": "string"},
            "null_value": {"type": "boolean", "description": "Send a tombstone."},
            "validate_json": {"type": "boolean", "description": "Refuse a value that is not JSON."},
            "headers": {
                "oneOf": [
                    {"type": "object", "additionalProperties": {"type": "string"}},
                    {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                ]
            },
            "partition": {"type": "integer", "description": "Absent: the partitioner picks."},
            "acks": {"type": "string", "enum": list(ACKS), "default": "all"},
            "compression": {"type": "string", "enum": list(COMPRESSIONS), "default": "none"},
            "count": {
                "type": "integer",
                "default": 1,
                "maximum": MAX_COUNT,
                "description": "Send this many; {{i}} in key, value and header values becomes 0 … count−1.",
            },
        },
        "example": {"key": "order-{{i}}", "value": '{"n": {{i}}}', "count": 3},
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "partition": {"type": "integer"},
            "offset": {"type": "integer", "description": "-1 with acks=0"},
            "timestamp": {"type": "integer", "nullable": True},
            "error": {"type": "string", "nullable": True},
        },
    },
    "GroupRow": {
        "type": "object",
        "properties": {
            "group_id": {"type": "string"},
            "state": {"type": "string"},
            "members": {"type": "integer"},
            "protocol": {"type": "string"},
            "coordinator": {"type": "integer", "nullable": True},
            "total_lag": {"type": "integer", "nullable": True},
        },
    },
    "Group": {
        "type": "object",
        "properties": {
            "group": {"type": "string"},
            "state": {"type": "string"},
            "members": {"type": "integer"},
            "total_lag": {"type": "integer"},
            "partitions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string"},
                        "partition": {"type": "integer"},
                        "committed": {"type": "integer"},
                        "log_end": {"type": "integer", "nullable": True},
                        "lag": {"type": "integer", "nullable": True},
                    },
                },
            },
            "history": {
                "type": "array",
                "description": "[time, total lag] over the last minutes, oldest first",
                "items": {"type": "array"},
            },
        },
    },
    "OffsetReset": {
        "type": "object",
        "required": ["strategy"],
        "properties": {
            "strategy": {"type": "string", "enum": [s for s, _ in RESET_STRATEGIES]},
            "offset": {"type": "integer", "description": "For offset and shift."},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "For timestamp (UTC).",
            },
            "topics": {
                "type": "string",
                "description": "Comma-separated; default: committed ones.",
            },
            "execute": {"type": "boolean", "description": "false (default): only show the plan."},
        },
    },
    "Event": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "kind": {"type": "string"},
            "broker": {"type": "integer", "nullable": True},
            "topic": {"type": "string"},
            "partition": {"type": "integer", "nullable": True},
            "message": {"type": "string"},
            "actor": {"type": "string"},
            "data": {"type": "object"},
        },
    },
}


def document(server_url: str = "/") -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Kafkaweb API",
            "version": "1",
            "description": (
                "Administer topics, read and produce messages, and manage consumer groups. "
                "Authenticate with a token (`Authorization: Bearer kw_…`, from the account "
                "page), HTTP basic auth, or the browser session (send `X-CSRFToken` on "
                "changes). Viewers may read; changes need a staff user and are recorded as "
                "admin events."
            ),
        },
        "servers": [{"url": server_url}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
        },
        "security": [{"token": []}, {"basic": []}, {"session": []}],
        "tags": [
            {"name": "cluster", "description": "Brokers, controller and events"},
            {"name": "topics", "description": "Topics, partitions and configs"},
            {"name": "messages", "description": "Search, read and produce messages"},
            {"name": "groups", "description": "Consumer groups, lag and offsets"},
        ],
        "paths": {
            "/api/cluster": {
                "get": {
                    "tags": ["cluster"],
                    "summary": "Brokers, the active controller, totals and live rates",
                    "responses": {"200": _json({"type": "object"}), **READ_ERRORS},
                }
            },
            "/api/events": {
                "get": {
                    "tags": ["cluster"],
                    "summary": "Cluster events, newest first",
                    "parameters": [
                        _query("kind", "Only this kind", {"type": "string"}),
                        _query("search", "In message, topic and actor", {"type": "string"}),
                        _query("before", "Events older than this id (paging)", {"type": "integer"}),
                        _query("limit", "At most (≤ 500)", {"type": "integer", "default": 50}),
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "events": {"type": "array", "items": _ref("Event")},
                                    "next_before": {"type": "integer", "nullable": True},
                                },
                            }
                        ),
                        **READ_ERRORS,
                    },
                }
            },
            "/api/topics": {
                "get": {
                    "tags": ["topics"],
                    "summary": "List topics (searched, sorted and paged on the server)",
                    "parameters": [
                        _query("search", "Substring of the name", {"type": "string"}),
                        _query("sort", "Sort by", {"type": "string", "enum": list(TOPIC_SORTS)}),
                        _query("internal", "Include internal topics", {"type": "boolean"}),
                        *PAGE,
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "topics": {"type": "array", "items": _ref("TopicRow")},
                                    "page": {"type": "integer"},
                                    "pages": {"type": "integer"},
                                    "total": {"type": "integer"},
                                },
                            }
                        ),
                        **READ_ERRORS,
                    },
                },
                "post": {
                    "tags": ["topics"],
                    "summary": "Create a topic",
                    "requestBody": {"required": True, **_json(_ref("NewTopic"))},
                    "responses": {"201": _json(_ref("Topic"), "Created"), **ERRORS},
                },
            },
            "/api/topics/{name}": {
                "parameters": [TOPIC],
                "get": {
                    "tags": ["topics"],
                    "summary": "A topic with its partitions (leader, replicas, ISR, offsets)",
                    "responses": {"200": _json(_ref("Topic")), **READ_ERRORS},
                },
                "delete": {
                    "tags": ["topics"],
                    "summary": "Delete a topic",
                    "responses": {"204": {"description": "Deleted"}, **ERRORS},
                },
            },
            "/api/topics/{name}/configs": {
                "parameters": [TOPIC],
                "get": {
                    "tags": ["topics"],
                    "summary": "Every config with its source",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "configs": {"type": "array", "items": _ref("ConfigEntry")}
                                },
                            }
                        ),
                        **READ_ERRORS,
                    },
                },
                "patch": {
                    "tags": ["topics"],
                    "summary": "Set and remove config overrides",
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "set": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "delete": {"type": "array", "items": {"type": "string"}},
                                },
                                "example": {
                                    "set": {"retention.ms": "3600000"},
                                    "delete": ["cleanup.policy"],
                                },
                            }
                        ),
                    },
                    "responses": {"200": _json({"type": "object"}), **ERRORS},
                },
            },
            "/api/topics/{name}/partitions": {
                "parameters": [TOPIC],
                "post": {
                    "tags": ["topics"],
                    "summary": "Grow the topic to a number of partitions",
                    "requestBody": {
                        "required": True,
                        **_json(
                            {
                                "type": "object",
                                "required": ["partitions"],
                                "properties": {"partitions": {"type": "integer", "example": 6}},
                            }
                        ),
                    },
                    "responses": {"200": _json(_ref("Topic")), **ERRORS},
                },
            },
            "/api/topics/{name}/messages": {
                "parameters": [TOPIC],
                "get": {
                    "tags": ["messages"],
                    "summary": "Search messages (the brokers holding the data scan them)",
                    "parameters": SEARCH,
                    "responses": {
                        "200": {
                            "description": "Matches, oldest first (newest first for seek=latest)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "summary": _ref("ScanSummary"),
                                            "messages": {"type": "array", "items": _ref("Message")},
                                        },
                                    }
                                },
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        **READ_ERRORS,
                    },
                },
                "post": {
                    "tags": ["messages"],
                    "summary": "Produce one or more messages",
                    "requestBody": {"required": True, **_json(_ref("Produce"))},
                    "responses": {
                        "201": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "delivered": {"type": "integer"},
                                    "failed": {"type": "integer"},
                                    "messages": {"type": "array", "items": _ref("Delivery")},
                                },
                            },
                            "Written: where each message landed",
                        ),
                        **ERRORS,
                    },
                },
            },
            "/api/topics/{name}/partitions/{partition}/messages/{offset}": {
                "parameters": [
                    TOPIC,
                    _path("partition", "Partition", {"type": "integer"}),
                    _path("offset", "Offset", {"type": "integer"}),
                ],
                "get": {
                    "tags": ["messages"],
                    "summary": "One message, whole (values up to 1 MiB)",
                    "responses": {"200": _json(_ref("Message")), **READ_ERRORS},
                },
            },
            "/api/groups": {
                "get": {
                    "tags": ["groups"],
                    "summary": "Consumer groups with state, members and total lag",
                    "parameters": [
                        _query("search", "Substring of the group id", {"type": "string"}),
                        _query("sort", "Sort by", {"type": "string", "enum": list(GROUP_SORTS)}),
                        *PAGE,
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "groups": {"type": "array", "items": _ref("GroupRow")}
                                },
                            }
                        ),
                        **READ_ERRORS,
                    },
                }
            },
            "/api/groups/{group_id}": {
                "parameters": [GROUP],
                "get": {
                    "tags": ["groups"],
                    "summary": "A group: members, per-partition committed offset, log end, lag, history",
                    "responses": {"200": _json(_ref("Group")), **READ_ERRORS},
                },
                "delete": {
                    "tags": ["groups"],
                    "summary": "Delete an inactive group and its offsets",
                    "responses": {
                        "204": {"description": "Deleted"},
                        "409": _json(_ref("Error"), "The group has members"),
                        **ERRORS,
                    },
                },
            },
            "/api/groups/{group_id}/reset-offsets": {
                "parameters": [GROUP],
                "post": {
                    "tags": ["groups"],
                    "summary": "Plan or execute an offset reset of an inactive group",
                    "requestBody": {"required": True, **_json(_ref("OffsetReset"))},
                    "responses": {
                        "200": _json({"type": "object"}),
                        "409": _json(_ref("Error"), "The group has members"),
                        **ERRORS,
                    },
                },
            },
        },
    }
