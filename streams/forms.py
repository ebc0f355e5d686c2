"""Forms of the admin UI; the JSON API validates its bodies with the same classes."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from streams.services.messages import MAX_LIMIT, SEEKS, ScanQuery, TextFilter
from streams.services.produce import ACKS, COMPRESSIONS, MAX_COUNT

# Configs people set most; the form suggests them, the broker accepts any of Kafka's.
COMMON_CONFIGS = (
    ("cleanup.policy", "delete | compact | compact,delete"),
    ("retention.ms", "how long to keep records, ms (-1: forever)"),
    ("retention.bytes", "largest size of a partition before old segments go (-1: no limit)"),
    ("min.insync.replicas", "in-sync replicas an acks=all write needs"),
    ("segment.bytes", "size of a segment file"),
    ("max.message.bytes", "largest record batch"),
    ("compression.type", "producer | uncompressed | gzip | snappy | lz4 | zstd"),
    ("message.timestamp.type", "CreateTime | LogAppendTime"),
)


def parse_configs(text: str) -> dict[str, str]:
    """`name=value` lines (blank lines and # comments ignored) into a dict."""
    configs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValidationError(f"Line {number}: write name=value, e.g. retention.ms=86400000")
        if name in configs:
            raise ValidationError(f"Line {number}: {name} is set twice")
        configs[name] = value.strip()
    return configs


def format_configs(configs: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(configs.items()))


class ConfigsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"})

    def to_python(self, value: Any) -> Any:
        if isinstance(value, dict):  # JSON API bodies give an object
            return {str(k): str(v) for k, v in value.items()}
        return parse_configs(super().to_python(value) or "")


class TopicCreateForm(forms.Form):
    # Ranges and names are checked by the broker, so its own message is what users read.
    name = forms.CharField(max_length=249, widget=forms.TextInput(attrs={"autofocus": True}))
    partitions = forms.IntegerField(initial=3)
    replication_factor = forms.IntegerField(
        required=False,
        help_text="Empty: the cluster default, min(3, live brokers).",
    )
    configs = ConfigsField(
        required=False,
        help_text="One name=value per line, by Kafka's names.",
    )

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()


class TopicPartitionsForm(forms.Form):
    partitions = forms.IntegerField(label="New partition count")


class TopicConfigsForm(forms.Form):
    configs = ConfigsField(
        required=False,
        label="Overrides",
        help_text="One name=value per line. Remove a line to return to the default.",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "mono"}),
    )


class ConfirmNameForm(forms.Form):
    """A destructive action asks for the name of what it destroys."""

    confirm = forms.CharField(label="Type the name to confirm")

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self) -> str:
        value = str(self.cleaned_data["confirm"]).strip()
        if value != self.expected:
            raise ValidationError(f"Type {self.expected} exactly to confirm.")
        return value


class ProduceForm(forms.Form):
    key = forms.CharField(
        required=False,
        strip=False,
        help_text="Empty: no key.",
        widget=forms.TextInput(attrs={"class": "mono"}),
    )
    value = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
    )
    null_value = forms.BooleanField(required=False, label="Null value (tombstone)")
    validate_json = forms.BooleanField(required=False, label="Value must be JSON")
    partition = forms.IntegerField(
        required=False, min_value=0, help_text="Empty: the partitioner picks."
    )
    acks = forms.ChoiceField(choices=[(a, a) for a in ACKS], initial="all", required=False)
    compression = forms.ChoiceField(
        choices=[(c, c) for c in COMPRESSIONS], initial="none", required=False
    )
    count = forms.IntegerField(
        min_value=1, max_value=MAX_COUNT, initial=1, label="Send", required=False
    )

    def __init__(self, *args: Any, partitions: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.partition_count = partitions
        self.header_rows: list[tuple[str, str]] = []

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound:
            self.header_rows = self._headers()

    def _headers(self) -> list[tuple[str, str]]:
        data = self.data
        if hasattr(data, "getlist"):
            names, values = data.getlist("header_name"), data.getlist("header_value")
        else:  # a JSON body: {"headers": [["name", "value"], ...]} or {"name": "value"}
            raw = data.get("headers") or []
            pairs = raw.items() if isinstance(raw, dict) else raw
            try:
                names, values = [str(p[0]) for p in pairs], [str(p[1]) for p in pairs]
            except (TypeError, IndexError, KeyError):
                self.add_error(None, "headers: give [[name, value], ...] or an object")
                return []
        rows = []
        for name, value in zip(names, values, strict=False):
            if not name.strip() and not value:
                continue
            if not name.strip():
                self.add_error(None, f"A header with value {value!r} needs a name.")
                continue
            rows.append((name.strip(), value))
        return rows

    def clean_value(self) -> str:
        return str(self.cleaned_data.get("value") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("validate_json") and not data.get("null_value"):
            sample = str(data.get("value") or "").replace("{{i}}", "0")
            try:
                json.loads(sample)
            except ValueError as exc:
                self.add_error("value", f"Not valid JSON: {exc}")
        partition = data.get("partition")
        if partition is not None and self.partition_count and partition >= self.partition_count:
            self.add_error(
                "partition",
                f"The topic has partitions 0 to {self.partition_count - 1}.",
            )
        return data

    def produce_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "key": data.get("key") or None,
            "value": None if data.get("null_value") else data.get("value", ""),
            "headers": self.header_rows,
            "partition": data.get("partition"),
            "acks": data.get("acks") or "all",
            "compression": data.get("compression") or "none",
            "count": data.get("count") or 1,
        }


FILTER_MODES = (("contains", "contains"), ("regex", "regex"))


class MessageSearchForm(forms.Form):
    """Where to read a topic from and what to keep: the search box of the messages page."""

    partition = forms.IntegerField(required=False, min_value=0)
    seek = forms.ChoiceField(
        choices=[
            ("earliest", "Oldest first"),
            ("latest", "Newest first"),
            ("offset", "From offset"),
            ("timestamp", "From time"),
        ],
        initial="latest",
        required=False,
    )
    offset = forms.IntegerField(required=False, min_value=0)
    timestamp = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S.%f"],
        help_text="UTC",
    )
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, initial=100)
    key = forms.CharField(required=False, strip=False)
    key_mode = forms.ChoiceField(choices=FILTER_MODES, required=False, initial="contains")
    value = forms.CharField(required=False, strip=False)
    value_mode = forms.ChoiceField(choices=FILTER_MODES, required=False, initial="contains")
    ignore_case = forms.BooleanField(required=False)
    header = forms.CharField(required=False, help_text="name or name=value (value: substring)")

    def __init__(self, *args: Any, topic: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topic = topic

    def clean_timestamp(self) -> datetime.datetime | None:
        value = self.cleaned_data.get("timestamp")
        if value is not None and timezone.is_naive(value):
            value = value.replace(tzinfo=datetime.UTC)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        seek = data.get("seek") or "latest"
        data["seek"] = seek
        if seek == "offset" and data.get("offset") is None:
            self.add_error("offset", "Give the offset to start from.")
        if seek == "timestamp" and data.get("timestamp") is None:
            self.add_error("timestamp", "Give the time to start from.")
        for name in ("key", "value"):
            if data.get(name) and data.get(f"{name}_mode") == "regex":
                try:
                    re.compile(data[name].encode())
                except re.error as exc:
                    self.add_error(name, f"Not a valid regular expression: {exc}")
        return data

    def query(self, *, max_value_bytes: int = 4096, limit: int | None = None) -> ScanQuery:
        data = self.cleaned_data
        ignore_case = bool(data.get("ignore_case"))

        def text(name: str) -> TextFilter | None:
            if not data.get(name):
                return None
            return TextFilter(data[name], data.get(f"{name}_mode") == "regex", ignore_case)

        headers: tuple[tuple[str, TextFilter | None], ...] = ()
        if data.get("header"):
            name, sep, value = str(data["header"]).partition("=")
            headers = (
                (name.strip(), TextFilter(value, False, ignore_case) if sep and value else None),
            )
        assert data["seek"] in SEEKS
        return ScanQuery(
            topic=self.topic,
            partition=data.get("partition"),
            seek=data["seek"],
            offset=data.get("offset") or 0,
            timestamp=data.get("timestamp"),
            limit=limit or data.get("limit") or 100,
            key=text("key"),
            value=text("value"),
            headers=headers,
            max_value_bytes=max_value_bytes,
        )


RESET_STRATEGIES = (
    ("earliest", "Earliest offset"),
    ("latest", "Latest offset (skip everything)"),
    ("timestamp", "First offset at or after a time"),
    ("offset", "A given offset"),
    ("shift", "Shift by N (negative: back)"),
)


class GroupResetForm(forms.Form):
    strategy = forms.ChoiceField(choices=RESET_STRATEGIES, initial="earliest")
    offset = forms.IntegerField(required=False, help_text="For “a given offset” and “shift”.")
    timestamp = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%z"],
        help_text="UTC",
    )
    topics = forms.CharField(
        required=False, help_text="Comma-separated; empty: every partition the group committed."
    )
    execute = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        strategy = data.get("strategy")
        if strategy in ("offset", "shift") and data.get("offset") is None:
            self.add_error("offset", "Give the offset (or the shift).")
        if strategy == "timestamp":
            moment = data.get("timestamp")
            if moment is None:
                self.add_error("timestamp", "Give the time to reset to.")
            elif timezone.is_naive(moment):
                data["timestamp"] = moment.replace(tzinfo=datetime.UTC)
        return data

    @property
    def topic_list(self) -> list[str] | None:
        raw = str(self.cleaned_data.get("topics") or "")
        names = [t.strip() for t in raw.split(",") if t.strip()]
        return names or None

    @property
    def value(self) -> int | datetime.datetime | None:
        strategy = self.cleaned_data["strategy"]
        if strategy in ("offset", "shift"):
            return int(self.cleaned_data["offset"])
        if strategy == "timestamp":
            return self.cleaned_data["timestamp"]
        return None
