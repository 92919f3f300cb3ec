"""The device pages in a real headless Chromium (issue 13's first scenario): an admin
provisions a call button in the browser, a real MQTT client connects with the secret shown
once, presses SOS, and the SOS reaches the duty screen open in a second browser; revoke
with confirmation; the import page's dry run and error report. Screenshots are kept in
test-artifacts/screenshots/<test>/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dashboard.app import create_app
from dashboard.devices import DevicesConfig
from gateway.device_accounts import DeviceAccounts
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel
from kernel import db
from tests.support.dashboard import SECRET, World
from tests.support.devices import RawDevice
from tests.support.live import (
    Screenshots,
    Served,
    browser_page,
    live,
    log_in,
    logged_in_page,
    running_server,
)
from tests.support.pipeline import running_pipeline
from tests.support.services import Broker
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

pytestmark = pytest.mark.usefixtures("chromium")

WALL: ViewportSize = {"width": 1400, "height": 1000}


@pytest.fixture
def server(world: World, clean_db: str, broker: Broker) -> Iterator[Served]:
    """The dashboard with device administration and the live feed."""
    cfg = DevicesConfig(DeviceAccounts(broker.data_dir, ("127.0.0.1", broker.port)),
                        broker.pipeline, broker.admin)
    app = create_app(clean_db, SECRET, mqtt=broker.pipeline, devices=cfg)
    stream = live(app)
    with running_server(app) as srv:
        wait_until(lambda: stream.database_up and stream.bus_up, what="the live feed")
        yield srv


def test_admin_provisions_a_call_button_whose_sos_reaches_the_duty_screen(
        server: Served, world: World, clean_db: str, broker: Broker,
        screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    with running_pipeline(broker.pipeline, clean_db), browser_page(WALL) as admin:
        page = admin.page
        # The duty screen in a second context of the same browser (its own session storage).
        browser = page.context.browser
        assert browser is not None
        duty_page = browser.new_context(viewport=WALL).new_page()
        duty_errors: list[str] = []
        duty_page.on("pageerror", lambda exc: duty_errors.append(str(exc)))
        log_in(page, server.url + "/admin/devices", "admin")
        expect(page.locator("#devices-body tr")).to_have_count(3)  # the seeded devices
        page.get_by_label("Resident", exact=True).select_option(
            label=f"Bob Berg (north, #{world.bob})")
        page.get_by_label("Device", exact=True).select_option("call_button")
        page.get_by_role("button", name="Provision").click()
        dialog = page.locator("#secret-dialog")
        expect(dialog).to_be_visible()
        src = page.locator("#secret-qr").get_attribute("src") or ""
        assert src.startswith("data:image/svg+xml")
        device_id = page.locator("#secret-device").inner_text()
        password = page.locator("#secret-password").inner_text()
        prefix = page.locator("#secret-prefix").inner_text()
        assert device_id and password and prefix == f"eldercare/v1/north/{device_id}"
        screenshot(page, "devices-provision-secret")
        page.get_by_role("button", name="I have noted it — close").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#secret-password")).to_have_text("")  # shown once (cleared on close)
        expect(page.locator("#devices-body tr")).to_have_count(4)

        log_in(duty_page, server.url + "/", "duty-north")
        expect(duty_page.locator("#feed-status")).to_contain_text("Live")
        creds = DeviceCredentials(device_id, "call_button", "north", world.bob, device_id,
                                  password, prefix, "127.0.0.1", broker.port)
        button = RawDevice(creds, broker.port)
        try:
            wait_until(button.connected.is_set, what="the new call button connects")
            button.publish(Channel.EVENT, json.dumps(
                {"ts": int(time.time() * 1000), "seq": 1, "type": "sos"}).encode())
            bob = duty_page.locator(".alert-group", has_text="Bob Berg")
            expect(bob.locator(".alert", has_text="SOS call")).to_be_visible()
            screenshot(duty_page, "devices-sos-on-duty-screen")

            page.once("dialog", lambda d: d.accept())
            page.locator(f'tr[data-device="{device_id}"]').get_by_role(
                "button", name="Revoke").click()
            expect(page.locator("#devices-body tr")).to_have_count(3)
            wait_until(lambda: not button.client.is_connected(),
                       what="the revoked button is disconnected")
            screenshot(page, "devices-after-revoke")
        finally:
            button.close()
        assert not admin.problems and not duty_errors, admin.problems + duty_errors


def test_import_page_dry_run_shows_the_errors_and_offers_the_report(
        server: Served, world: World, tmp_path: Path, screenshot: Screenshots) -> None:
    from playwright.sync_api import expect

    sheet = tmp_path / "elders.csv"
    sheet.write_text("site,full_name,birth_year,call_button\n"
                     "north,Dag Dahl,1936,yes\nnowhere,,19x6,maybe\n")
    with logged_in_page(WALL, server.url + "/admin/import", "admin") as browser:
        page = browser.page
        page.get_by_label("File", exact=True).set_input_files(str(sheet))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#import-summary")).to_contain_text("nothing was imported")
        expect(page.locator("#import-errors tr")).to_have_count(4)
        expect(page.locator("#import-errors-link")).to_be_visible()
        expect(page.locator("#import-creds-link")).to_be_hidden()
        screenshot(page, "import-errors")
        with page.expect_download() as got:
            page.locator("#import-errors-link").click()
        report = Path(got.value.path()).read_text()
        assert report.splitlines()[0] == "row,column,message"
        assert not browser.problems, browser.problems


def test_import_dry_run_says_what_it_would_create_in_plain_counts(
        server: Served, world: World, tmp_path: Path, screenshot: Screenshots) -> None:
    """The new-user trial: "Dry run: 2 rows are valid" said nothing of what would be made,
    and "1 devices" read badly."""
    from playwright.sync_api import expect

    sheet = tmp_path / "one.csv"
    sheet.write_text("site,full_name,birth_year,bed_sensor,call_button\n"
                     "north,Dag Dahl,1936,no,yes\n")
    with logged_in_page(WALL, server.url + "/admin/import", "admin") as browser:
        page = browser.page
        page.get_by_label("File", exact=True).set_input_files(str(sheet))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#import-summary")).to_have_text(
            'Dry run: 1 row is valid; importing would create 1 resident, 1 device and '
            '1 broker account. Untick "Dry run" to import.')
        screenshot(page, "import-dry-run-counts")
        page.get_by_label("Dry run (check only)").uncheck()
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#import-summary")).to_have_text(
            "Imported 1 resident, 1 device and 1 broker account.")
        assert not browser.problems, browser.problems


def test_a_device_row_opens_its_health_history_in_the_sites_zone(
        server: Served, world: World, clean_db: str, screenshot: Screenshots) -> None:
    """The new-user trial: /admin/devices showed only the current state. A click on a row
    now shows the device's status reports (online/offline, battery over time), its last
    test press and its provision/move/revoke events, at the site's times (Asia/Shanghai,
    UTC+8, whatever the browser's zone)."""
    from playwright.sync_api import expect

    with db.connect(clean_db) as conn:
        conn.execute("UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
        for when, online, battery in (("2026-03-01T02:00:00Z", True, 90),
                                      ("2026-03-02T02:00:00Z", False, 80)):
            conn.execute("INSERT INTO device_status (time, device_id, resident_id, online, "
                         "battery, received_at) VALUES (%s, 'btn-alice', %s, %s, %s, %s)",
                         (when, world.alice, online, battery, when))
        conn.execute("INSERT INTO device_events (time, device_id, resident_id, seq, type, "
                     "received_at) VALUES ('2026-03-02T03:30:00Z', 'btn-alice', %s, 1, "
                     "'test', '2026-03-02T03:30:00Z')", (world.alice,))
        conn.execute("INSERT INTO device_history (time, device_id, action, site_id, "
                     "resident_id, actor) VALUES ('2026-03-01T01:00:00Z', 'btn-alice', "
                     "'provision', 'north', %s, 'admin')", (world.alice,))
        conn.commit()
    with logged_in_page(WALL, server.url + "/admin/devices", "admin") as browser:
        page = browser.page
        panel = page.locator("#device-history")
        expect(panel).to_be_hidden()
        page.locator('tr[data-device="btn-alice"] td').first.click()
        expect(panel).to_be_visible()
        expect(page.locator("#history-title")).to_contain_text("btn-alice")
        expect(page.locator("#history-test")).to_have_text("2026-03-02 11:30")
        expect(page.locator("#history-zone")).to_have_text("Asia/Shanghai")
        rows = page.locator("#history-status tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("2026-03-02 10:00")
        expect(rows.nth(0)).to_contain_text("offline")
        expect(rows.nth(0)).to_contain_text("80%")
        expect(rows.nth(1)).to_contain_text("2026-03-01 10:00")
        expect(page.locator("#history-battery-line svg")).to_be_visible()
        events = page.locator("#history-events tr")
        expect(events).to_have_count(1)
        expect(events.first).to_contain_text("2026-03-01 09:00")
        expect(events.first).to_contain_text("provisioned")
        expect(events.first).to_contain_text("admin")
        screenshot(page, "device-health-history")
        page.get_by_role("button", name="Close").click()
        expect(panel).to_be_hidden()
        page.locator('tr[data-device="bed-alice"]').focus()  # from the keyboard too
        page.keyboard.press("Enter")
        expect(page.locator("#history-title")).to_contain_text("bed-alice")
        expect(page.locator("#history-status-empty")).to_be_visible()
        assert not browser.problems, browser.problems
