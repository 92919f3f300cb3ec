"""The duty screen in a real headless Chromium against a real uvicorn and database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from dashboard.app import create_app
from eldercare import db
from eldercare.services import free_port
from tests.dashboard.conftest import PASSWORD, SECRET, World, insert_alert
from tests.helpers import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's Chromium at /usr/bin/chromium")


@pytest.fixture
def server(clean_db: str) -> Iterator[str]:
    """The dashboard served by uvicorn in a background thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(clean_db, SECRET), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    wait_until(lambda: srv.started or not thread.is_alive(), what="uvicorn to start")
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"


def test_duty_officer_sees_open_sos_alert(server, world: World, clean_db, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(f"console: {msg.text} {msg.location}")
                    if msg.type == "error" else None)
            page.goto(server)

            page.get_by_label("Username").fill("duty-north")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            card = page.locator(".alert", has_text="Alice Andersen")
            expect(card).to_be_visible()
            expect(card).to_contain_text("SOS call")
            expect(card).to_contain_text("CRITICAL")
            expect(card).to_contain_text("min ago")
            expect(page.locator(".alert")).to_have_count(1)  # south's SOS is not shown
            expect(page.get_by_text("Dora Duty · Duty officer · site north")).to_be_visible()

            alice = page.locator(".resident", has_text="Alice Andersen")
            expect(alice).to_contain_text("1 open alert")
            expect(alice).to_contain_text("OFFLINE")
            expect(alice).to_contain_text("battery LOW 12%")
            expect(page.locator(".resident", has_text="Bob Berg")).to_be_visible()
            expect(page.locator(".resident")).to_have_count(2)

            # A new alert reaches the screen through the 2 s refresh.
            with db.connect(clean_db, autocommit=True) as conn:
                insert_alert(conn, world.bob, "north", "fall", "critical", minutes_ago=0)
            expect(page.locator(".alert", has_text="Bob Berg")).to_contain_text(
                "Fall detected", timeout=10_000)
            expect(page.locator(".alert")).to_have_count(2)

            page.screenshot(path=str(tmp_path / "duty-screen.png"), full_page=True)

            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_label("Username")).to_be_visible()
            expect(page.locator(".alert")).to_have_count(0)
            assert page.evaluate("sessionStorage.length") == 0
        finally:
            browser.close()
    assert problems == []
