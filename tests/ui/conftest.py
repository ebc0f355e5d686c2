"""Browser tests: a cluster of their own with the web app and the monitor, and real Chromium.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright; pages are saved as
screenshots in test-artifacts/.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from kafkaweb import env
from kafkaweb.cluster import PYTHON, Cluster
from tests.conftest import make_spec, wait_until_ready

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = env.BASE_DIR / "test-artifacts"
USERS = {"admin": ("admin-password-1", True), "viewer": ("viewer-password-1", False)}


@dataclass
class Ui:
    cluster: Cluster
    browser: Browser
    base_url: str
    shots: int = 0

    @property
    def bootstrap(self) -> str:
        return self.cluster.spec.bootstrap_servers

    def context(self, user: str) -> BrowserContext:
        """A browser profile signed in as `user`."""
        context = self.browser.new_context(
            viewport={"width": 1440, "height": 900}, base_url=self.base_url
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.goto("/login/")
        page.fill("#id_username", user)
        page.fill("#id_password", USERS[user][0])
        page.click("button[type=submit]")
        page.wait_for_url(f"{self.base_url}/")
        page.close()
        return context

    def shot(self, page: Page, name: str, *, full: bool = False) -> Path:
        self.shots += 1
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        return path


def _create_users(cluster: Cluster) -> None:
    lines = ["from django.contrib.auth.models import User"]
    for name, (password, staff) in USERS.items():
        lines.append(f"User.objects.create_user({name!r}, password={password!r}, is_staff={staff})")
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", "\n".join(lines)],
        cwd=env.BASE_DIR,
        env=cluster.spec.environment(),
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="package")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    cluster = Cluster(make_spec(tmp_path_factory.mktemp("ui"), brokers=2))
    with cluster.running(web=True, keep=False), sync_playwright() as playwright:
        wait_until_ready(cluster)
        _create_users(cluster)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Ui(cluster, browser, f"http://{cluster.spec.host}:{cluster.spec.web_port}")
        finally:
            browser.close()


@pytest.fixture(scope="package")
def admin(ui: Ui) -> Iterator[BrowserContext]:
    context = ui.context("admin")
    yield context
    context.close()


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    opened = admin.new_page()
    errors: list[Any] = []
    opened.on("pageerror", lambda error: errors.append(error))
    yield opened
    opened.close()
    assert errors == [], f"JavaScript errors: {errors}"
