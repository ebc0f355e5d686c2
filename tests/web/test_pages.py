"""Pages and API reads: server-side search, sort and paging; live figures from the brokers' stats."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import resolve

from brokers import control
from streams import events, selectors
from streams.api import openapi
from streams.models import ClusterEvent, ConsumerGroup, Partition, Replica
from tests.web.conftest import make_cluster

pytestmark = pytest.mark.django_db


def names_in(html: str) -> list[str]:
    return re.findall(r'<tr data-topic="([^"]+)"', html)


def publish_partition(broker: int, topic: str, partition: int, **offsets: int) -> None:
    client = selectors.redis_client()
    client.sadd(control.BROKER_IDS_KEY, broker)
    client.hset(
        control.partitions_key(broker),
        f"{topic}/{partition}",
        json.dumps(
            {
                "log_start": 0,
                "high_watermark": 0,
                "log_end": 0,
                "size": 0,
                "leader_epoch": 0,
                "isr": [broker],
                **offsets,
            }
        ),
    )


def test_topics_are_searched_sorted_and_paged_on_the_server(viewer_client: Client) -> None:
    make_cluster(topics=120, partitions=2)
    first = viewer_client.get("/topics/").content.decode()
    assert names_in(first) == [f"topic-{n:05d}" for n in range(50)]
    assert "1–50 of 120" in first
    last = viewer_client.get("/topics/?page=3").content.decode()
    assert names_in(last) == [f"topic-{n:05d}" for n in range(100, 120)]
    searched = viewer_client.get("/topics/?q=0011").content.decode()
    assert names_in(searched) == [f"topic-{n:05d}" for n in (11, *range(110, 120))]
    descending = viewer_client.get("/topics/?sort=name&order=desc&size=25").content.decode()
    assert names_in(descending)[:2] == ["topic-00119", "topic-00118"]
    assert len(names_in(descending)) == 25


def test_a_partial_answer_is_the_table_alone(viewer_client: Client) -> None:
    make_cluster(topics=3)
    partial = viewer_client.get("/topics/?q=topic", headers={"X-Partial": "1"}).content.decode()
    assert "<table" in partial
    assert "<html" not in partial


def test_topics_sort_by_size_from_the_leaders_stats(viewer_client: Client) -> None:
    make_cluster(topics=4, partitions=1)
    for n, size in enumerate([10, 4000, 30, 2000]):
        publish_partition(1, f"topic-{n:05d}", 0, size=size, high_watermark=n)
    page = viewer_client.get("/topics/?sort=size&order=desc").content.decode()
    assert names_in(page) == ["topic-00001", "topic-00003", "topic-00002", "topic-00000"]
    assert "4.0 KB" in page


def test_the_topic_page_shows_leaders_replicas_and_offsets(viewer_client: Client) -> None:
    make_cluster(topics=1, partitions=2)
    row = Replica.objects.get(partition__index=1, position=1)
    row.in_sync = False
    row.save()
    publish_partition(
        1, "topic-00000", 0, log_start=5, high_watermark=1234, log_end=1240, size=99000
    )
    html = viewer_client.get("/topics/topic-00000/").content.decode()
    partition0 = html.split('data-partition="0"')[1].split("</tr>")[0]
    assert '<td class="num" data-k="leader">1</td>' in partition0
    assert "1,234" in partition0 and "1,240" in partition0 and "99.0 KB" in partition0
    partition1 = html.split('data-partition="1"')[1].split("</tr>")[0]
    assert "broker-chip out" in partition1


def test_an_offline_partition_says_so(viewer_client: Client) -> None:
    make_cluster(topics=1, partitions=1)
    Partition.objects.update(leader=None)
    html = viewer_client.get("/topics/topic-00000/").content.decode()
    assert "offline" in html.split('data-partition="0"')[1]
    topics = viewer_client.get("/api/topics").json()["topics"]
    assert topics[0]["offline"] == 1


def test_the_overview_shows_live_brokers_and_the_replica_map(viewer_client: Client) -> None:
    make_cluster(topics=2, partitions=2, brokers=2)
    selectors.redis_client().set(
        events.STATS_LATEST_KEY,
        json.dumps(
            {
                "type": "cluster.stats",
                "at": 1,
                "controller": {"id": 1, "epoch": 7},
                "brokers": [{"id": 1, "alive": True, "bytes_in_per_s": 2500.0, "partitions": 4}],
                "totals": {"bytes_in_per_s": 2500.0},
                "topics": {},
            }
        ),
    )
    html = viewer_client.get("/").content.decode()
    assert '<span id="brokers-up">1</span>' in html
    assert "epoch 7" in html
    assert "2.5 KB/s" in html
    assert html.count('data-tp="topic-') == 4
    filtered = viewer_client.get(
        "/?replicas=00001", headers={"X-Partial": "replicas"}
    ).content.decode()
    assert filtered.count('data-tp="topic-') == 2


def test_groups_show_lag_from_the_monitor(viewer_client: Client) -> None:
    for name in ("alpha", "beta", "gamma"):
        ConsumerGroup.objects.create(group_id=name, state="Stable", members=[{"member_id": "m"}])
    selectors.redis_client().set(
        events.LAG_LATEST_KEY,
        json.dumps(
            {
                "type": "lag.update",
                "at": "2026-11-28T17:50:17+00:00",
                "groups": [
                    {
                        "group": "alpha",
                        "state": "Stable",
                        "members": 1,
                        "total_lag": 5,
                        "partitions": [],
                    },
                    {
                        "group": "beta",
                        "state": "Stable",
                        "members": 1,
                        "total_lag": 500,
                        "partitions": [
                            {
                                "topic": "t",
                                "partition": 0,
                                "committed": 10,
                                "log_end": 510,
                                "lag": 500,
                            }
                        ],
                    },
                ],
            }
        ),
    )
    html = viewer_client.get("/groups/?sort=lag&order=desc").content.decode()
    assert re.findall(r'<tr data-group="([^"]+)"', html) == ["beta", "alpha", "gamma"]
    detail = viewer_client.get("/groups/beta/").content.decode()
    assert "510" in detail and '<div class="value" id="total-lag">500</div>' in detail
    api = viewer_client.get("/api/groups/beta").json()
    assert api["total_lag"] == 500


def test_events_are_newest_first_filtered_and_paged(viewer_client: Client) -> None:
    for n in range(60):
        ClusterEvent.objects.create(
            kind="leader" if n % 2 else "isr", message=f"event {n}", topic="t"
        )
    html = viewer_client.get("/events/").content.decode()
    assert html.index("event 59") < html.index("event 58")
    assert "event 9<" not in html
    older = re.search(r'href="(\?before=\d+)"', html)
    assert older is not None
    assert "event 9<" in viewer_client.get("/events/" + older.group(1)).content.decode()
    leaders = viewer_client.get("/api/events?kind=leader&limit=100").json()["events"]
    assert len(leaders) == 30 and {e["kind"] for e in leaders} == {"leader"}
    assert viewer_client.get("/api/events?kind=nonsense").status_code == 400


def test_the_openapi_document_matches_the_routes(viewer_client: Client) -> None:
    document = Client().get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert document == json.loads(json.dumps(openapi.document(document["servers"][0]["url"])))
    for path, item in document["paths"].items():
        concrete = (
            path.replace("{name}", "t")
            .replace("{group_id}", "g")
            .replace("{partition}", "0")
            .replace("{offset}", "0")
        )
        match = resolve(concrete)
        view = match.func.view_class if hasattr(match.func, "view_class") else match.func
        for method in item:
            if method != "parameters":
                assert hasattr(view, method), f"{method.upper()} {path} has no handler"
    docs = viewer_client.get("/api/").content.decode()
    for path in document["paths"]:
        assert path in docs
