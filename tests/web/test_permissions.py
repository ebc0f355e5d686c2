"""Who may do what: viewers read everything and change nothing; staff change; strangers sign in."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from streams.api import tokens
from tests.web.conftest import PASSWORD, Calls

pytestmark = pytest.mark.django_db

TOPIC = "topic-00000"

# Every page that changes something, with a body that would pass validation.
MUTATING_PAGES = [
    ("/new-topic/", {"name": "fresh", "partitions": "3"}),
    (
        f"/topics/{TOPIC}/produce/",
        {"value": "hello", "acks": "all", "compression": "none", "count": "1"},
    ),
    (f"/topics/{TOPIC}/partitions/", {"partitions": "6"}),
    (f"/topics/{TOPIC}/delete/", {"confirm": TOPIC}),
    ("/groups/billing/reset/", {"strategy": "earliest", "execute": "on"}),
    ("/groups/billing/delete/", {"confirm": "billing"}),
]
MUTATING_API = [
    ("post", "/api/topics", {"name": "fresh", "partitions": 3}),
    ("delete", f"/api/topics/{TOPIC}", None),
    ("patch", f"/api/topics/{TOPIC}/configs", {"set": {"retention.ms": "1000"}}),
    ("post", f"/api/topics/{TOPIC}/partitions", {"partitions": 6}),
    ("post", f"/api/topics/{TOPIC}/messages", {"value": "hello"}),
    ("post", "/api/groups/billing/reset-offsets", {"strategy": "earliest", "execute": True}),
    ("delete", "/api/groups/billing", None),
]
READ_PAGES = [
    "/",
    "/topics/",
    f"/topics/{TOPIC}/",
    f"/topics/{TOPIC}/messages/",
    f"/topics/{TOPIC}/tail/",
    f"/topics/{TOPIC}/configs/",
    "/groups/",
    "/groups/billing/",
    "/events/",
    "/api/",
    "/account/",
]
READ_API = [
    "/api/cluster",
    "/api/topics",
    f"/api/topics/{TOPIC}",
    "/api/groups",
    "/api/groups/billing",
    "/api/events",
]


def api(
    client: Client, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    data = None if body is None else json.dumps(body)
    return getattr(client, method)(
        path, data=data, content_type="application/json", headers=headers or {}
    )


def basic(username: str, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.mark.parametrize("path", READ_PAGES)
def test_strangers_are_sent_to_sign_in(cluster_rows: list[str], path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", READ_API)
def test_api_asks_strangers_to_authenticate(cluster_rows: list[str], path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", READ_PAGES)
def test_viewers_read_every_page(
    cluster_rows: list[str], viewer_client: Client, fake_services: Calls, path: str
) -> None:
    assert viewer_client.get(path).status_code == 200


@pytest.mark.parametrize("path", READ_API)
def test_viewers_read_the_api(cluster_rows: list[str], viewer_client: Client, path: str) -> None:
    assert viewer_client.get(path).status_code == 200


@pytest.mark.parametrize(("path", "body"), MUTATING_PAGES)
def test_viewers_cannot_change_anything_through_pages(
    cluster_rows: list[str],
    viewer_client: Client,
    fake_services: Calls,
    path: str,
    body: dict[str, str],
) -> None:
    assert viewer_client.get(path).status_code == 403
    assert viewer_client.post(path, body).status_code == 403
    assert fake_services.calls == []


def test_viewers_cannot_edit_configs(
    cluster_rows: list[str], viewer_client: Client, fake_services: Calls
) -> None:
    page = viewer_client.get(f"/topics/{TOPIC}/configs/")
    assert b"Save configs" not in page.content
    response = viewer_client.post(f"/topics/{TOPIC}/configs/", {"configs": "retention.ms=1"})
    assert response.status_code == 403
    assert "topic_configs_alter" not in fake_services.names()


def test_viewers_see_no_buttons_that_would_fail(
    cluster_rows: list[str], viewer_client: Client
) -> None:
    for path in ("/", "/topics/", f"/topics/{TOPIC}/"):
        content = viewer_client.get(path).content.decode()
        assert "New topic" not in content
        assert f"/topics/{TOPIC}/produce/" not in content


@pytest.mark.parametrize(("method", "path", "body"), MUTATING_API)
@pytest.mark.parametrize("auth", ["session", "basic", "token"])
def test_viewers_get_403_from_the_api(
    cluster_rows: list[str],
    viewer: Any,
    fake_services: Calls,
    method: str,
    path: str,
    body: Any,
    auth: str,
) -> None:
    client = Client()
    headers = {}
    if auth == "session":
        client = Client(enforce_csrf_checks=True)
        client.force_login(viewer)
        client.get("/account/")
        headers["X-CSRFToken"] = client.cookies["csrftoken"].value
    elif auth == "basic":
        headers["Authorization"] = basic("victor")
    else:
        headers["Authorization"] = f"Bearer {tokens.token_for(viewer)}"
    response = api(client, method, path, body, headers)
    assert response.status_code == 403
    assert response.json()["error"] == "Only staff users can change the cluster."
    assert fake_services.calls == []


def test_sessions_must_send_the_csrf_token(
    cluster_rows: list[str], staff: Any, fake_services: Calls
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    refused = api(client, "delete", f"/api/topics/{TOPIC}")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    client.get("/account/")
    allowed = api(
        client,
        "delete",
        f"/api/topics/{TOPIC}",
        headers={"X-CSRFToken": client.cookies["csrftoken"].value},
    )
    assert allowed.status_code == 204
    assert fake_services.names() == ["topic_delete"]


def test_pages_refuse_a_post_without_csrf(
    cluster_rows: list[str], staff: Any, fake_services: Calls
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post("/new-topic/", {"name": "x", "partitions": "1"}).status_code == 403
    assert fake_services.calls == []


def test_staff_change_through_basic_auth_and_tokens(
    cluster_rows: list[str], staff: Any, fake_services: Calls
) -> None:
    by_basic = api(
        Client(), "delete", f"/api/topics/{TOPIC}", headers={"Authorization": basic("alice")}
    )
    assert by_basic.status_code == 204
    token = tokens.token_for(staff)
    by_token = api(
        Client(), "delete", f"/api/topics/{TOPIC}", headers={"Authorization": f"Bearer {token}"}
    )
    assert by_token.status_code == 204
    assert [kwargs["actor"] for _, _, kwargs in fake_services.calls] == ["alice", "alice"]


def test_a_password_change_revokes_tokens(cluster_rows: list[str], staff: Any) -> None:
    token = tokens.token_for(staff)
    assert Client().get("/api/topics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    staff.set_password("another-long-password")
    staff.save()
    assert Client().get("/api/topics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert Client().get("/api/topics", HTTP_AUTHORIZATION="Bearer kw_forged").status_code == 401
    assert (
        Client().get("/api/topics", HTTP_AUTHORIZATION=basic("alice", "wrong")).status_code == 401
    )


def test_the_account_page_makes_a_working_token(
    cluster_rows: list[str], viewer_client: Client
) -> None:
    page = viewer_client.post("/account/").content.decode()
    token = page.split('id="token" class="mono" readonly value="')[1].split('"')[0]
    assert Client().get("/api/cluster", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
