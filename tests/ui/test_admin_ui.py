"""The admin UI in a real browser against a real cluster: one journey, in order.

Sign in, create a topic (a refusal shown first), produce from the form into an open live tail,
browse by offset and by time, watch a consumer group's lag fall, check a viewer can change
nothing, and last, kill a broker and watch the leader move on an open topic page.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from playwright.sync_api import BrowserContext, Page, expect

from tests.ui.conftest import USERS, Ui

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

TOPIC = f"ui-orders-{uuid.uuid4().hex[:6]}"
WAIT_MS = 60_000


def create_topic(ui: Ui, name: str, partitions: int, replication_factor: int) -> None:
    admin = AdminClient({"bootstrap.servers": ui.bootstrap})
    admin.create_topics([NewTopic(name, partitions, replication_factor)])[name].result(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no leaders for {name}")


def test_sign_in_and_see_the_cluster(ui: Ui) -> None:
    context = ui.browser.new_context(viewport={"width": 1440, "height": 900}, base_url=ui.base_url)
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(f"{ui.base_url}/login/?next=/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".form-errors")).to_contain_text("correct username and password")
    ui.shot(page, "login")
    page.fill("#id_password", USERS["admin"][0])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{ui.base_url}/")
    expect(page.locator("#brokers-up")).to_have_text("2", timeout=WAIT_MS)
    expect(page.locator("#live-status")).to_have_class("live-status on")
    expect(page.locator("#controller")).to_contain_text("#")
    ui.shot(page, "overview", full=True)
    context.close()


def test_create_a_topic_after_the_broker_refuses_a_bad_one(ui: Ui, page: Page) -> None:
    page.goto("/new-topic/")
    page.fill("#id_name", TOPIC)
    page.fill("#id_partitions", "3")
    page.fill("#id_replication_factor", "5")
    page.fill("#id_configs", "retention.ms=86400000")
    page.click("#topic-form button[type=submit]")
    refusal = page.locator(".field.invalid", has=page.locator("#id_replication_factor"))
    expect(refusal).to_contain_text("Replication factor: 5 larger than available brokers: 2.")
    ui.shot(page, "topic-create-refused")
    page.goto(f"/topics/?q={TOPIC}")
    expect(page.locator("#topics-table")).to_contain_text(f"No topic matches “{TOPIC}”")

    page.goto("/new-topic/")
    page.fill("#id_name", TOPIC)
    page.fill("#id_partitions", "3")
    page.fill("#id_replication_factor", "2")
    page.fill("#id_configs", "retention.ms=86400000")
    page.click("#topic-form button[type=submit]")
    expect(page).to_have_url(f"{ui.base_url}/topics/{TOPIC}/")
    expect(page.locator(".notice.success")).to_contain_text(f"Topic {TOPIC} created.")
    expect(page.locator("#partitions tbody tr")).to_have_count(3)
    expect(page.locator('#partitions [data-k="high_watermark"]').first).to_have_text(
        "0", timeout=WAIT_MS
    )
    ui.shot(page, "topic")
    page.goto(f"/topics/{TOPIC}/configs/")
    expect(page.locator('#config-table tr[data-name="retention.ms"]')).to_contain_text("override")
    ui.shot(page, "topic-configs")
    page.goto("/topics/")
    page.fill('#list-form input[name="q"]', TOPIC[:12])
    expect(page.locator("#topics-table tbody tr")).to_have_count(1)
    ui.shot(page, "topics")
    page.goto("/events/?kind=admin")
    expect(page.locator("#events")).to_contain_text(f"admin created topic {TOPIC}")


def test_a_message_produced_from_the_form_shows_in_an_open_tail_within_a_second(
    ui: Ui, admin: BrowserContext
) -> None:
    tail = admin.new_page()
    tail.goto(f"/topics/{TOPIC}/tail/")
    expect(tail.locator("#tail-state")).to_have_attribute("data-ready", "1", timeout=WAIT_MS)
    form = admin.new_page()
    form.goto(f"/topics/{TOPIC}/produce/")
    form.fill("#id_key", "order-{{i}}")
    form.fill("#id_value", '{"order": {{i}}, "item": "tail-check"}')
    form.check("#id_validate_json")
    form.fill('input[name="header_name"]', "source")
    form.fill('input[name="header_value"]', "ui-test")
    form.select_option("#id_partition", "1")
    form.fill("#id_count", "3")
    form.click("#produce-submit")
    expect(form.locator("#deliveries tbody tr")).to_have_count(3)
    ui.shot(form, "produce")

    rows = tail.locator("#tail tbody tr[data-offset]")
    expect(rows).to_have_count(3, timeout=WAIT_MS)
    expect(tail.locator("#tail")).to_contain_text("tail-check")
    # Both pages share the browser's clock: from the form's submission (the start of the
    # result page's navigation) to the first row the tail drew.
    submitted_ms = form.evaluate("performance.timeOrigin")
    shown_ms = min(int(v) for v in rows.evaluate_all("rs => rs.map(r => r.dataset.shownAt)"))
    assert shown_ms - submitted_ms <= 1000, (
        f"the tail showed the message {shown_ms - submitted_ms:.0f} ms after the submission"
    )
    ui.shot(tail, "tail")
    form.close()
    tail.close()


def test_browse_by_offset_and_by_time_and_open_a_message(ui: Ui, page: Page) -> None:
    page.goto(f"/topics/{TOPIC}/messages/")
    expect(page.locator("#results tbody tr[data-offset]")).to_have_count(3, timeout=WAIT_MS)
    page.select_option("#id_partition", "1")
    page.select_option("#id_seek", "offset")
    page.fill("#id_offset", "1")
    page.click("#search")
    rows = page.locator("#results tbody tr[data-offset]")
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-offset", "1")
    expect(rows.first).to_contain_text('"order":1')
    expect(page.locator("#scan-status")).to_contain_text("Scanned 2 of 2 records")

    def shown_times() -> list[datetime.datetime]:
        return [
            datetime.datetime.fromisoformat(t.replace(" ", "T")).replace(tzinfo=datetime.UTC)
            for t in page.locator(
                "#results tbody tr[data-offset] td:nth-child(3)"
            ).all_inner_texts()
        ]

    moment = shown_times()[0].replace(microsecond=0)
    page.select_option("#id_seek", "timestamp")
    page.fill("#id_timestamp", moment.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#search")
    expect(page.locator("#scan-status")).to_contain_text("Scanned", timeout=WAIT_MS)
    expect(page.locator('#results tbody tr[data-offset="1"]')).to_have_count(1)
    assert all(shown >= moment for shown in shown_times())

    page.select_option("#id_seek", "earliest")
    page.select_option("#id_partition", "")
    page.fill("#id_value", '"order": 2')
    page.click("#search")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    page.click("#display-mode button[data-mode=hex]")
    expect(rows.first.locator("td.value")).to_contain_text("7b 22 6f 72")
    page.click("#display-mode button[data-mode=auto]")
    ui.shot(page, "messages")

    rows.first.locator("td:nth-child(2) a").click()
    expect(page).to_have_url(f"{ui.base_url}/topics/{TOPIC}/messages/1/2/")
    expect(page.locator("#value")).to_contain_text('"item": "tail-check"')
    expect(page.locator("#headers")).to_contain_text("ui-test")
    ui.shot(page, "message")


@dataclass
class SlowGroup:
    name: str
    go: threading.Event
    stop: threading.Event
    thread: threading.Thread

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def slow_group(ui: Ui) -> Iterator[SlowGroup]:
    """A group that reads 50 of 200 records, commits, then waits to be told to read on."""
    topic = f"ui-lag-{uuid.uuid4().hex[:6]}"
    group = f"ui-group-{uuid.uuid4().hex[:6]}"
    create_topic(ui, topic, 1, 2)
    producer = Producer({"bootstrap.servers": ui.bootstrap})
    for i in range(200):
        producer.produce(topic, f"record {i}".encode())
    assert producer.flush(30) == 0
    go = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": ui.bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        try:
            consumer.subscribe([topic])
            read = 0
            while not stop.is_set():
                if read >= 50 and not go.is_set():
                    time.sleep(0.05)
                    consumer.poll(0)
                    continue
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                read += 1
                if read == 50 or go.is_set():
                    consumer.commit(message=message, asynchronous=False)
        except BaseException as exc:
            errors.append(exc)
        finally:
            consumer.close()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    running = SlowGroup(group, go, stop, thread)
    yield running
    running.close()
    assert errors == []


def test_a_groups_lag_falls_on_its_open_page_then_its_offsets_are_reset(
    ui: Ui, page: Page, slow_group: SlowGroup
) -> None:
    group = slow_group.name
    deadline = time.monotonic() + 60
    while True:
        response = page.goto(f"/groups/{group}/")
        if response is not None and response.status == 200:
            break
        assert time.monotonic() < deadline, "the group never appeared"
        time.sleep(0.5)
    total = page.locator("#total-lag")
    expect(total).to_have_text("150", timeout=WAIT_MS)
    ui.shot(page, "group-lagging")
    page.evaluate("window.stillTheSamePage = true")
    slow_group.go.set()
    expect(total).to_have_text("0", timeout=WAIT_MS)
    expect(page.locator('#group-partitions [data-k="lag"]')).to_have_text("0")
    assert page.evaluate("window.stillTheSamePage") is True
    assert page.locator("#lag-chart path.line").count() == 1
    ui.shot(page, "group")

    slow_group.close()
    expect(page.locator('h1 [data-k="state"]')).to_have_text("Empty", timeout=WAIT_MS)
    page.select_option("#id_strategy", "offset")
    page.fill("#id_offset", "120")
    page.click('#reset-form button[value=""]')
    expect(page.locator("#reset-form table")).to_contain_text("120")
    expect(total).to_have_text("0")
    page.select_option("#id_strategy", "earliest")
    page.click('#reset-form button[value="on"]')
    expect(page.locator(".notice.success")).to_contain_text(
        f"Offsets of {group} reset on 1 partitions."
    )
    expect(page.locator("#total-lag")).to_have_text("200", timeout=WAIT_MS)
    page.goto("/groups/")
    expect(page.locator(f'tr[data-group="{group}"]')).to_contain_text("Empty")
    ui.shot(page, "groups")
    page.goto(f"/groups/{group}/")
    page.fill("#id_confirm", group)
    page.click('button:has-text("Delete group")')
    expect(page).to_have_url(f"{ui.base_url}/groups/")
    expect(page.locator(f'tr[data-group="{group}"]')).to_have_count(0)
    page.goto("/events/?kind=admin")
    expect(page.locator("#events")).to_contain_text(f"group {group} deleted")


def test_a_viewer_reads_but_cannot_change_anything(ui: Ui, page: Page) -> None:
    viewer = ui.context("viewer")
    try:
        browse = viewer.new_page()
        browse.goto("/topics/")
        expect(browse.locator("#topics-table")).to_contain_text(TOPIC)
        expect(browse.get_by_role("link", name="New topic")).to_have_count(0)
        browse.goto(f"/topics/{TOPIC}/")
        expect(browse.locator(".tabs")).not_to_contain_text("Produce")
        response = browse.goto("/new-topic/")
        assert response is not None and response.status == 403
        ui.shot(browse, "viewer-403")
        browse.goto(f"/topics/{TOPIC}/configs/")
        statuses = browse.evaluate(
            """async (topic) => {
                const csrf = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
                const form = new URLSearchParams({csrfmiddlewaretoken: csrf, configs: 'retention.ms=1'});
                const page = await fetch(`/topics/${topic}/configs/`, {method: 'POST', body: form});
                const api = await fetch(`/api/topics/${topic}`, {method: 'DELETE', headers: {'X-CSRFToken': csrf}});
                const produce = await fetch(`/api/topics/${topic}/messages`, {
                    method: 'POST', headers: {'X-CSRFToken': csrf, 'Content-Type': 'application/json'},
                    body: JSON.stringify({value: 'x'})});
                return [page.status, api.status, produce.status];
            }""",
            TOPIC,
        )
        assert statuses == [403, 403, 403]
    finally:
        viewer.close()
    page.goto(f"/topics/{TOPIC}/")
    expect(page.locator("#total-messages")).to_have_text("3", timeout=WAIT_MS)
    page.goto("/events/")
    ui.shot(page, "events")
    page.goto("/api/")
    page.locator("details.op").first.click()
    ui.shot(page, "api-docs")
    page.goto("/account/")
    page.click("text=Create a token")
    expect(page.locator("#token")).to_have_value(re.compile(r"^kw_"))
    ui.shot(page, "account")


def test_killing_a_leader_moves_leadership_on_the_open_topic_page_within_5_s(
    ui: Ui, page: Page
) -> None:
    topic = f"ui-failover-{uuid.uuid4().hex[:6]}"
    create_topic(ui, topic, 2, 2)
    page.goto(f"/topics/{topic}/")
    leaders = page.locator('#partitions [data-k="leader"]')
    expect(leaders).to_have_count(2)
    expect(page.locator("#partitions")).to_contain_text("0", timeout=WAIT_MS)
    led_by_two = [i for i, text in enumerate(leaders.all_inner_texts()) if text.strip() == "2"]
    assert led_by_two, "broker 2 leads no partition of the new topic"
    row = page.locator(f'#partitions tr[data-partition="{led_by_two[0]}"]')
    ui.cluster.kill("broker-2")
    expect(row.locator('[data-k="leader"]')).to_have_text("1", timeout=5000)
    expect(row.locator('[data-k="replicas"] .broker-chip.out')).to_have_text("2", timeout=WAIT_MS)
    ui.shot(page, "topic-leader-moved")
    page.goto("/")
    expect(page.locator('.broker[data-broker="2"] [data-k="state"]')).to_contain_text(
        "down", timeout=WAIT_MS
    )
    ui.shot(page, "overview-broker-down", full=True)
