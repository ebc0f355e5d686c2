"""Bad input gets a clear error next to the field and changes nothing; good input reaches the
service with exactly what the user typed; the broker's refusal is shown where it belongs."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.test import Client

from streams.forms import MessageSearchForm, parse_configs
from streams.models import ClusterEvent
from streams.services import GroupNotEmpty, ServiceError
from tests.web.conftest import Calls

pytestmark = pytest.mark.django_db

TOPIC = "topic-00000"


def errors_of(response: Any) -> str:
    return response.content.decode()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "partitions": "3"}, "This field is required."),
        ({"name": "x", "partitions": "three"}, "Enter a whole number."),
        ({"name": "x", "partitions": "3", "configs": "retention.ms"}, "Line 1: write name=value"),
        (
            {"name": "x", "partitions": "3", "configs": "a=1\nretention.ms=1\nretention.ms=2"},
            "Line 3: retention.ms is set twice",
        ),
    ],
)
def test_topic_form_errors_change_nothing(
    cluster_rows: list[str],
    staff_client: Client,
    fake_services: Calls,
    form: dict[str, str],
    message: str,
) -> None:
    response = staff_client.post("/new-topic/", form)
    assert response.status_code == 400
    assert message in errors_of(response)
    assert fake_services.calls == []


def test_the_brokers_reason_shows_at_its_field(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    fake_services.errors["topic_create"] = ServiceError(
        "Replication factor: 5 larger than available brokers: 3.", "replication_factor"
    )
    response = staff_client.post(
        "/new-topic/", {"name": "orders", "partitions": "3", "replication_factor": "5"}
    )
    assert response.status_code == 400
    html = errors_of(response)
    field = html.split('id="id_replication_factor"')[1].split("</div>\n</div>")[0]
    assert "Replication factor: 5 larger than available brokers: 3." in field


def test_a_topic_is_created_with_what_was_typed(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    response = staff_client.post(
        "/new-topic/",
        {
            "name": " orders ",
            "partitions": "6",
            "configs": "retention.ms=60000\n\n# note\ncleanup.policy=compact",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/topics/orders/"
    ((name, _, kwargs),) = fake_services.calls
    assert name == "topic_create"
    assert kwargs == {
        "name": "orders",
        "partitions": 6,
        "replication_factor": -1,
        "configs": {"retention.ms": "60000", "cleanup.policy": "compact"},
        "actor": "alice",
    }


def test_deleting_needs_the_exact_name(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    response = staff_client.post(f"/topics/{TOPIC}/delete/", {"confirm": "topic-0000"})
    assert response.status_code == 400
    assert f"Type {TOPIC} exactly to confirm." in errors_of(response)
    assert fake_services.calls == []
    assert staff_client.post(f"/topics/{TOPIC}/delete/", {"confirm": TOPIC}).status_code == 302
    assert fake_services.names() == ["topic_delete"]


def test_config_edits_send_only_the_difference(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    from streams.models import Topic, TopicConfig

    topic = Topic.objects.get(name=TOPIC)
    TopicConfig.objects.create(topic=topic, name="retention.ms", value="1000")
    TopicConfig.objects.create(topic=topic, name="cleanup.policy", value="compact")
    response = staff_client.post(
        f"/topics/{TOPIC}/configs/", {"configs": "retention.ms=2000\nsegment.bytes=1048576"}
    )
    assert response.status_code == 302
    ((_, args, kwargs),) = [c for c in fake_services.calls if c[0] == "topic_configs_alter"]
    assert args == (TOPIC,)
    assert kwargs["set_configs"] == {"retention.ms": "2000", "segment.bytes": "1048576"}
    assert kwargs["delete_configs"] == ["cleanup.policy"]


def test_a_refused_config_is_shown_and_kept(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    fake_services.errors["topic_configs_alter"] = ServiceError(
        "Invalid value abc for configuration retention.ms: Not a number of type LONG", "configs"
    )
    response = staff_client.post(f"/topics/{TOPIC}/configs/", {"configs": "retention.ms=abc"})
    assert response.status_code == 400
    assert "Not a number of type LONG" in errors_of(response)
    assert "retention.ms=abc" in errors_of(response)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"value": "{not json", "validate_json": "on"}, "Not valid JSON"),
        ({"value": "x", "partition": "3"}, "The topic has partitions 0 to 2."),
        ({"value": "x", "partition": "-1"}, "greater than or equal to 0"),
        ({"value": "x", "count": "0"}, "greater than or equal to 1"),
        ({"value": "x", "count": "100001"}, "less than or equal to 100000"),
        ({"value": "x", "acks": "2"}, "Select a valid choice"),
        ({"value": "x", "header_name": "", "header_value": "orphan"}, "needs a name"),
    ],
)
def test_produce_form_errors_change_nothing(
    cluster_rows: list[str],
    staff_client: Client,
    fake_services: Calls,
    form: dict[str, str],
    message: str,
) -> None:
    response = staff_client.post(f"/topics/{TOPIC}/produce/", form)
    assert response.status_code == 400
    assert message in errors_of(response)
    assert fake_services.calls == []


def test_produce_passes_headers_counter_and_choices(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    response = staff_client.post(
        f"/topics/{TOPIC}/produce/",
        {
            "key": "order-{{i}}",
            "value": '{"n": {{i}}}',
            "validate_json": "on",
            "header_name": ["source", "", "trace"],
            "header_value": ["ui", "", "t-{{i}}"],
            "partition": "2",
            "acks": "1",
            "compression": "zstd",
            "count": "5",
        },
    )
    assert response.status_code == 200
    ((_, args, kwargs),) = fake_services.calls
    assert args == (TOPIC,)
    assert kwargs == {
        "key": "order-{{i}}",
        "value": '{"n": {{i}}}',
        "headers": [("source", "ui"), ("trace", "t-{{i}}")],
        "partition": 2,
        "acks": "1",
        "compression": "zstd",
        "count": 5,
        "actor": "alice",
    }


def test_an_empty_key_is_no_key_and_a_tombstone_has_no_value(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    staff_client.post(
        f"/topics/{TOPIC}/produce/", {"key": "", "value": "ignored", "null_value": "on"}
    )
    ((_, _, kwargs),) = fake_services.calls
    assert kwargs["key"] is None
    assert kwargs["value"] is None
    assert kwargs["acks"] == "all"
    assert kwargs["count"] == 1


def test_group_reset_errors(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    response = staff_client.post("/groups/billing/reset/", {"strategy": "offset"})
    assert response.status_code == 400
    assert "Give the offset" in errors_of(response)
    response = staff_client.post("/groups/billing/reset/", {"strategy": "timestamp"})
    assert "Give the time to reset to." in errors_of(response)
    assert fake_services.calls == []
    fake_services.errors["group_offsets_reset"] = GroupNotEmpty(
        "group billing is stable with 2 members; stop its consumers first"
    )
    response = staff_client.post(
        "/groups/billing/reset/", {"strategy": "earliest", "execute": "on"}
    )
    assert response.status_code == 400
    assert "stop its consumers first" in errors_of(response)


def test_group_reset_to_a_time_is_utc(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    staff_client.post(
        "/groups/billing/reset/",
        {
            "strategy": "timestamp",
            "timestamp": "2026-11-28T17:00:00",
            "topics": "a, b",
            "execute": "on",
        },
    )
    ((_, args, kwargs),) = fake_services.calls
    assert args == ("billing",)
    assert kwargs["value"] == datetime.datetime(2026, 11, 28, 17, tzinfo=datetime.UTC)
    assert kwargs["topics"] == ["a", "b"]
    assert kwargs["execute"] is True


def test_search_form_checks_what_the_brokers_cannot() -> None:
    bad = MessageSearchForm({"value": "([", "value_mode": "regex", "seek": "timestamp"}, topic="t")
    assert not bad.is_valid()
    assert "Not a valid regular expression" in bad.errors["value"][0]
    assert bad.errors["timestamp"] == ["Give the time to start from."]
    good = MessageSearchForm(
        {
            "partition": "2",
            "seek": "offset",
            "offset": "40",
            "key": "^order-1$",
            "key_mode": "regex",
            "header": "source=ui",
            "ignore_case": "on",
            "limit": "5",
        },
        topic="t",
    )
    assert good.is_valid(), good.errors
    query = good.query()
    assert (query.partition, query.seek, query.offset, query.limit) == (2, "offset", 40, 5)
    assert query.key is not None and query.key.regex and query.key.ignore_case
    assert query.headers[0][0] == "source"
    assert query.headers[0][1] is not None and query.headers[0][1].pattern == "ui"


def test_config_lines() -> None:
    assert parse_configs("a=1\n  b = two words \n#c=3\n\n") == {"a": "1", "b": "two words"}


# The JSON API validates with the same forms ------------------------------------------------


def post_json(client: Client, path: str, body: Any) -> Any:
    return client.post(
        path,
        data=json.dumps(body) if not isinstance(body, str) else body,
        content_type="application/json",
    )


def test_api_reports_field_errors(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    response = post_json(staff_client, "/api/topics", {"partitions": "many"})
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["name"][0]["message"] == "This field is required."
    assert fields["partitions"][0]["message"] == "Enter a whole number."
    assert (
        post_json(staff_client, "/api/topics", "{oops")
        .json()["error"]
        .startswith("The body is not JSON")
    )
    assert post_json(staff_client, "/api/topics", "[1]").status_code == 400
    assert fake_services.calls == []


def test_api_passes_on_the_brokers_refusal(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    fake_services.errors["topic_create"] = ServiceError(
        "Topic 'x' already exists.", "name", "TOPIC_ALREADY_EXISTS"
    )
    response = post_json(staff_client, "/api/topics", {"name": "x", "partitions": 1})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Topic 'x' already exists.",
        "fields": {"name": ["Topic 'x' already exists."]},
    }


def test_api_produce_takes_headers_as_an_object(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    response = post_json(
        staff_client,
        f"/api/topics/{TOPIC}/messages",
        {"value": "v", "headers": {"a": "1", "b": "2"}, "count": 2},
    )
    assert response.status_code == 201
    ((_, _, kwargs),) = fake_services.calls
    assert kwargs["headers"] == [("a", "1"), ("b", "2")]
    assert kwargs["count"] == 2


def test_api_group_conflicts_are_409(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    fake_services.errors["group_delete"] = GroupNotEmpty(
        "deleting group billing: the group has active members"
    )
    response = staff_client.delete("/api/groups/billing")
    assert response.status_code == 409
    assert "active members" in response.json()["error"]


def test_unknown_things_are_404(
    cluster_rows: list[str], staff_client: Client, fake_services: Calls
) -> None:
    assert staff_client.get("/topics/nope/").status_code == 404
    assert staff_client.get("/groups/nope/").status_code == 404
    assert staff_client.get("/api/topics/nope").status_code == 404
    assert staff_client.delete("/api/topics/nope").status_code == 404
    assert staff_client.get("/api/groups/nope").status_code == 404
    assert fake_services.calls == []
    assert not ClusterEvent.objects.filter(kind="admin").exists()
