"""The live alert feed (SSE) against a real uvicorn, PostgreSQL and Mosquitto."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from alerts.bus import bus_topic
from alerts.model import Severity
from dashboard.app import create_app
from dashboard.auth import create_token
from dashboard.live.feed import SHUTTING_DOWN
from dashboard.live.settings import StreamSettings
from gateway.presence import part_topic
from kernel import accounts, db
from tests.support.dashboard import SECRET, World, insert_alert
from tests.support.live import (
    STREAM,
    BusPublisher,
    EventReader,
    Served,
    TcpProxy,
    bus_event,
    bus_publisher,
    live,
    open_stream,
    running_server,
    token_for,
)
from tests.support.services import Broker
from tests.support.wait import wait_until

pytestmark = pytest.mark.anyio


def add_alert(database_url: str, resident_id: int, site: str, type_: str = "fall",
              severity: str = "critical", **columns: Any) -> int:
    """Insert and commit an alert (the trigger notifies the feed); returns its id."""
    with db.connect(database_url, autocommit=True) as conn:
        return insert_alert(conn, resident_id, site, type_, severity, minutes_ago=0, **columns)


def execute(database_url: str, query: str, *params: object) -> None:
    """Run one statement on a fresh autocommit connection."""
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute(query, params)


def session_token(database_url: str, user_id: int, ttl: timedelta) -> str:
    """A token for a session stored directly (e.g. one that expires in seconds)."""
    session_id = uuid.uuid4()
    execute(database_url, "INSERT INTO sessions (id, user_id, expires_at) "
            "VALUES (%s, %s, now() + %s)", session_id, user_id, ttl)
    return create_token(user_id, SECRET, ttl, session_id=session_id)


def quick(**overrides: float) -> StreamSettings:
    """Stream settings with short timers for tests."""
    values: dict[str, float] = {"heartbeat_s": 5.0, "backoff_min_s": 0.05, "backoff_max_s": 0.5,
                                "close_grace_s": 1.0, "db_ping_s": 1.0}
    values.update(overrides)
    return StreamSettings(**values)  # type: ignore[arg-type]


def make_app(database_url: str, broker: Broker | None, **settings: float) -> FastAPI:
    """A dashboard app with the bus (when `broker` is given) and quick stream timers."""
    app = create_app(database_url, SECRET, mqtt=broker.pipeline if broker else None)
    live(app).settings = quick(**settings)
    return app


def wait_live(app: FastAPI, bus: bool = True) -> None:
    """Wait until the feed listens to the database (and the bus)."""
    stream = live(app)
    wait_until(lambda: stream.database_up and (stream.bus_up or not bus),
               what="the feed to listen to the database and the bus")


@pytest.fixture
def app(world: World, clean_db: str, broker: Broker) -> FastAPI:
    """An app on the seeded world, with the bus."""
    return make_app(clean_db, broker)


@pytest.fixture
def served(app: FastAPI) -> Iterator[Served]:
    """The app served by uvicorn, listening on both sources."""
    with running_server(app) as srv:
        wait_live(app)
        yield srv


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the served app."""
    async with httpx.AsyncClient(base_url=served.url) as client:
        yield client


@pytest.fixture
def bus(broker: Broker) -> Iterator[BusPublisher]:
    """A publisher on the internal alert bus with the pipeline's service account."""
    with bus_publisher(broker.pipeline) as pub:
        yield pub


# --- database changes ---------------------------------------------------------------------


async def test_inserted_and_updated_alerts_arrive(http, world: World, clean_db):
    token = await token_for(http, "duty-north")
    async with open_stream(http, token) as feed:
        assert feed.retry == 3000
        assert feed.ready["user"] == "duty-north"
        assert feed.ready["database"] is True and feed.ready["bus"] is True

        uid = str(uuid.uuid4())
        alert_id = add_alert(clean_db, world.bob, "north", uid=uid, device_id="btn-bob")
        alert = await feed.expect("alert", {"id": alert_id})
        assert alert["uid"] == uid
        assert alert["resident_name"] == "Bob Berg"
        assert (alert["status"], alert["severity"], alert["type"]) == ("open", "critical", "fall")
        assert set(alert) >= {"opened_at", "created_at", "last_seen", "count", "assigned_to",
                              "acknowledged_by", "acknowledged_at", "outcome", "note"}

        execute(clean_db, "UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, "
                          "acknowledged_at = now() WHERE id = %s", world.care_north, alert_id)
        changed = await feed.expect("alert", {"id": alert_id})
        assert changed["status"] == "acknowledged"
        assert changed["acknowledged_by"] == world.care_north


async def test_a_pushed_alert_carries_its_sites_time_zone(http, world: World, clean_db):
    """The duty screen shows a live alert's times in its site's zone (issue 14)."""
    execute(clean_db, "UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
    token = await token_for(http, "duty-north")
    async with open_stream(http, token) as feed:
        alert_id = add_alert(clean_db, world.bob, "north", type_="sos")
        alert = await feed.expect("alert", {"id": alert_id})
        assert alert["site_timezone"] == "Asia/Shanghai"


async def test_each_subscriber_gets_only_its_scope(http, world: World, clean_db):
    tokens = {name: await token_for(http, name)
              for name in ("family-alice", "duty-south", "duty-north", "admin")}
    async with (open_stream(http, tokens["family-alice"]) as family,
                open_stream(http, tokens["duty-south"]) as south,
                open_stream(http, tokens["duty-north"]) as north,
                open_stream(http, tokens["admin"]) as admin):
        bob = add_alert(clean_db, world.bob, "north")
        alice = add_alert(clean_db, world.alice, "north", "fall")
        carol = add_alert(clean_db, world.carol, "south", "fall")
        last_north = add_alert(clean_db, world.bob, "north", "apnea")

        assert [(await admin.next_of("alert"))["id"] for _ in range(4)] == [
            bob, alice, carol, last_north]
        assert [(await north.next_of("alert"))["id"] for _ in range(3)] == [
            bob, alice, last_north]
        # Family sees their own relative only; the other site sees only its own.
        assert (await family.next_of("alert"))["id"] == alice
        assert (await south.next_of("alert"))["id"] == carol
        execute(clean_db, "UPDATE alerts SET note = 'seen' WHERE id = ANY(%s)", [bob, alice])
        assert (await family.next_of("alert"))["id"] == alice


async def test_family_streams_carry_the_family_view_without_staff_internals(
        http, world: World, clean_db):
    tokens = {name: await token_for(http, name) for name in ("family-alice", "duty-north")}
    async with (open_stream(http, tokens["family-alice"]) as family,
                open_stream(http, tokens["duty-north"]) as north):
        uid = str(uuid.uuid4())
        alice = add_alert(clean_db, world.alice, "north", "fall", uid=uid)
        assert (await north.next_of("alert"))["id"] == alice
        seen = await family.next_of("alert")
        assert seen["id"] == alice and seen["uid"] == uid and seen["summary"]
        execute(clean_db, "UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, "
                          "acknowledged_at = now(), assigned_to = %s, "
                          "note = 'assigned to carer1 (user 3)' WHERE id = %s",
                world.care_north, world.care_north, alice)
        staff = await north.expect("alert", {"id": alice, "status": "acknowledged"})
        assert staff["note"] and staff["acknowledged_by"] == world.care_north
        changed = await family.expect("alert", {"id": alice, "status": "acknowledged"})
        for internal in ("note", "assigned_to", "acknowledged_by", "resolved_by", "device_id"):
            assert internal not in changed
        assert "carer1" not in json.dumps(changed)


async def test_a_family_stream_speaks_its_readers_language(http, world: World, clean_db):
    token = await token_for(http, "family-alice")
    async with (open_stream(http, token, {"Accept-Language": "zh-CN"}) as chinese,
                open_stream(http, token, {"Accept-Language": "en"}) as english):
        alice = add_alert(clean_db, world.alice, "north", "fall")
        assert (await chinese.next_of("alert"))["summary"] == "已通知护理团队"
        assert (await english.next_of("alert"))["summary"] == "The care team has been alerted"
        assert alice


# --- the bus --------------------------------------------------------------------------------


async def test_bus_events_arrive_as_pending_in_scope(http, world: World, bus: BusPublisher,
                                                     clean_db):
    execute(clean_db, "UPDATE sites SET timezone = 'Asia/Shanghai' WHERE id = 'north'")
    tokens = {name: await token_for(http, name)
              for name in ("family-alice", "duty-south", "duty-north")}
    async with (open_stream(http, tokens["family-alice"]) as family,
                open_stream(http, tokens["duty-south"]) as south,
                open_stream(http, tokens["duty-north"]) as north):
        bus.publish_raw(bus_topic("north"), b"not an alert event")  # ignored, logged
        for_bob = bus_event("north", world.bob, "fall")
        for_alice = bus_event("north", world.alice, "sos", device_id="btn-alice")
        for_carol = bus_event("south", world.carol, "sos", Severity.URGENT)
        for event in (for_bob, for_alice, for_carol):
            bus.publish(event)

        first = await north.next_of("pending")
        assert first["uid"] == for_bob.uid
        assert first["alert_id"] is None and first["stored"] is False
        assert (first["action"], first["site"], first["resident_id"]) == ("raised", "north",
                                                                           world.bob)
        assert first["site_timezone"] == "Asia/Shanghai"  # its times are shown in it
        assert (await north.next_of("pending"))["uid"] == for_alice.uid
        alice = await family.next_of("pending")
        assert (alice["uid"], alice["device_id"]) == (for_alice.uid, "btn-alice")
        carol = await south.next_of("pending")
        assert (carol["uid"], carol["severity"]) == (for_carol.uid, "urgent")
        assert carol["site_timezone"] == "UTC"


async def test_bus_events_flow_while_the_database_is_down(world: World, clean_db, pg_config,
                                                          broker: Broker, bus: BusPublisher):
    proxy = TcpProxy(pg_config.port)
    try:
        app = make_app(proxy.url_for(clean_db, pg_config.port), broker)
        with running_server(app) as srv:
            wait_live(app)
            async with httpx.AsyncClient(base_url=srv.url) as http:
                await _outage(app, http, proxy, world, bus, clean_db)
    finally:
        proxy.close()


async def _outage(app: FastAPI, http: httpx.AsyncClient, proxy: TcpProxy, world: World,
                  bus: BusPublisher, clean_db: str) -> None:
    token = await token_for(http, "duty-north")
    async with open_stream(http, token) as feed:
        proxy.cut()
        assert (await feed.next_of("status")) == {"database": False, "bus": True}

        raised = bus_event("north", world.alice, "sos")
        bus.publish(raised)
        assert (await feed.next_of("pending"))["uid"] == raised.uid

        # A screen that reconnects during the outage is let in with its last known scope...
        async with open_stream(http, token) as again:
            assert again.ready["database"] is False
            second = bus_event("north", world.bob, "fall")
            bus.publish(second)
            assert (await again.next_of("pending"))["uid"] == second.uid
        # ...someone the feed has never seen cannot be checked, so is not.
        other = create_token(world.duty_south, SECRET, timedelta(minutes=5),
                             session_id=uuid.uuid4())
        resp = await http.get(STREAM, headers={"Authorization": f"Bearer {other}"})
        assert resp.status_code == 503
        assert "database is unavailable" in resp.json()["detail"]

        proxy.restore()
        assert (await feed.next_of("status")) == {"database": True, "bus": True}
        alert_id = add_alert(clean_db, world.alice, "north", "fall")
        assert (await feed.next_of("alert"))["id"] == alert_id
    assert live(app).database_up


# --- flow control ---------------------------------------------------------------------------


def _slow_client(url: str, token: str) -> socket.socket:
    """A client that requests the stream and then never reads (tiny receive buffer)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {STREAM} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    return sock


def _read_to_end(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent until it closed the connection."""
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_slow_client_is_cut_off_and_never_blocks_the_others(world: World, clean_db,
                                                                     broker: Broker,
                                                                     bus: BusPublisher):
    app = make_app(clean_db, broker, queue_limit=50, close_grace_s=0.5)
    stream = live(app)
    with running_server(app) as srv:
        wait_live(app)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            token = await token_for(http, "duty-north")
            slow = _slow_client(srv.url, token)
            try:
                wait_until(lambda: len(stream.hub) == 1, what="the slow client's stream")
                async with open_stream(http, token) as fast:
                    sent = await _flood_until_overflow(stream, bus, world, fast)
                    assert len(stream.hub) == 1  # only the fast one is left
                    rest = await anyio.to_thread.run_sync(_read_to_end, slow, 20.0)
                    assert rest, "the slow client got nothing at all"
                    assert sent > stream.settings.queue_limit
            finally:
                slow.close()
    assert stream.hub.overflows == 1


async def _flood_until_overflow(stream, bus: BusPublisher, world: World,
                                fast: EventReader) -> int:
    """Publish bursts until the slow stream overflows, then one more event; the fast reader
    must get every event, in order."""
    sent: list[str] = []
    received: list[str] = []
    last = bus_event("north", world.alice)

    async def read_until_last() -> None:
        while (uid := (await fast.next_of("pending"))["uid"]) != last.uid:
            received.append(uid)

    def burst(count: int) -> None:
        events = [bus_event("north", world.alice) for _ in range(count)]
        sent.extend(e.uid for e in events)
        for event in events[:-1]:
            bus.publish_raw(bus_topic("north"), event.model_dump_json().encode(), wait=False)
        bus.publish(events[-1])

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_until_last)
            while stream.hub.overflows == 0:
                await anyio.to_thread.run_sync(burst, 100)
                assert len(sent) < 200_000, "the slow client was never cut off"
            await anyio.to_thread.run_sync(bus.publish, last)
    assert received == sent
    return len(sent)


# --- protocol details -----------------------------------------------------------------------


async def test_heartbeats_and_authentication(world: World, clean_db, broker: Broker):
    app = make_app(clean_db, None, heartbeat_s=0.2)
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            resp = await http.get(STREAM)
            assert resp.status_code == 401
            assert resp.headers["www-authenticate"] == "Bearer"
            assert "log in" in resp.json()["detail"]
            resp = await http.get(STREAM, headers={"Authorization": "Bearer not-a-token"})
            assert resp.status_code == 401
            assert "Invalid access token" in resp.json()["detail"]

            schema = (await http.get("/openapi.json")).json()
            documented = schema["paths"][STREAM]["get"]["responses"]
            assert "text/event-stream" in documented["200"]["content"]

            token = await token_for(http, "duty-north")
            async with open_stream(http, token) as feed:
                assert feed.ready["bus"] is None  # no bus configured
                assert feed.ready["heartbeat_s"] == 0.2
                await feed.expect_heartbeat(timeout=5)
                await feed.expect_heartbeat(timeout=5)


async def test_expired_session_and_changed_account_end_the_stream(world: World, clean_db):
    app = make_app(clean_db, None, scope_refresh_s=0.1)
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            short = session_token(clean_db, world.duty_north, timedelta(seconds=2))
            async with open_stream(http, short) as feed:
                assert (await feed.next_of("close")) == {"reason": "session expired",
                                                         "action": "login"}
                assert await feed.next() is None

            token = await token_for(http, "care-north")
            async with open_stream(http, token) as feed:
                execute(clean_db, "UPDATE users SET site_id = 'south' WHERE id = %s",
                        world.care_north)
                assert (await feed.next_of("close"))["reason"] == "account changed"
                assert await feed.next() is None
            async with open_stream(http, token) as feed:  # reconnecting: the new scope
                assert feed.ready["site_id"] == "south"
            execute(clean_db, "UPDATE users SET active = false WHERE id = %s", world.care_north)
            resp = await http.get(STREAM, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401


async def test_server_shutdown_ends_open_streams(world: World, clean_db):
    app = make_app(clean_db, None)
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            token = await token_for(http, "duty-north")
            async with open_stream(http, token) as feed:
                await anyio.to_thread.run_sync(srv.stop)
                assert (await feed.next_of("close"))["reason"] == SHUTTING_DOWN
                assert await feed.next() is None


async def test_a_stream_ends_with_its_reason_in_the_readers_language(world: World, clean_db):
    app = make_app(clean_db, None)
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            token = await token_for(http, "duty-north")
            async with open_stream(http, token, {"Accept-Language": "zh-CN"}) as feed:
                await anyio.to_thread.run_sync(srv.stop)
                assert (await feed.next_of("close")) == {
                    "reason": "服务器正在重启，屏幕将很快重新连接", "action": "reconnect"}


# --- sessions and limits --------------------------------------------------------------------


async def test_logout_and_deactivation_end_open_streams_at_once(world: World, clean_db):
    """The scope refresh is slow here (an hour): streams end on the session notification."""
    app = make_app(clean_db, None, scope_refresh_s=3600)
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            token = await token_for(http, "duty-north")
            other = await token_for(http, "duty-north")
            async with open_stream(http, token) as feed, open_stream(http, other) as kept:
                resp = await http.post("/api/v1/auth/logout",
                                       headers={"Authorization": f"Bearer {token}"})
                assert resp.status_code == 204
                assert (await feed.next_of("close")) == {"reason": "logged out",
                                                         "action": "login"}
                assert await feed.next() is None
                alert_id = add_alert(clean_db, world.alice, "north")
                assert (await kept.next_of("alert"))["id"] == alert_id  # other session lives

            token = await token_for(http, "care-north")
            async with open_stream(http, token) as feed:
                with db.connect(clean_db) as conn:
                    accounts.set_user_active(conn, "care-north", False)
                assert (await feed.next_of("close")) == {"reason": "account deactivated",
                                                         "action": "login"}
                assert await feed.next() is None
            with db.connect(clean_db) as conn:
                accounts.set_user_active(conn, "care-north", True)
            resp = await http.get(STREAM, headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401
            assert "account deactivated" in resp.json()["detail"]
    assert len(live(app).hub) == 0


async def test_streams_are_capped_per_account_and_address_without_evicting_others(
        world: World, clean_db):
    app = make_app(clean_db, None)
    stream = live(app)
    stream.settings.max_per_account = 2
    stream.settings.max_per_address = 3
    with running_server(app) as srv:
        wait_live(app, bus=False)
        async with httpx.AsyncClient(base_url=srv.url) as http, AsyncExitStack() as stack:
            duty = await token_for(http, "duty-north")
            first = await stack.enter_async_context(open_stream(http, duty))
            second = await stack.enter_async_context(open_stream(http, duty))
            third = await stack.enter_async_context(open_stream(http, duty))
            closed = await first.next_of("close")
            assert closed["action"] == "stop"
            assert closed["reason"].startswith("too many live streams for this account")
            assert await first.next() is None
            assert len(stream.hub) == 2

            admin = await token_for(http, "admin")
            await stack.enter_async_context(open_stream(http, admin))
            # A fourth stream from 127.0.0.1, of an account with none there: refused, rather
            # than pushing out another person's screen.
            care = await token_for(http, "care-north")
            async with http.stream("GET", STREAM, headers={"Authorization": f"Bearer {care}"},
                                   timeout=httpx.Timeout(10.0, read=None)) as resp:
                closed = await EventReader(resp).next_of("close")
            assert closed["action"] == "reconnect"  # tries again later: a slot may free up
            assert closed["reason"].startswith("too many live streams from this network")
            assert len(stream.hub) == 3
            # A further stream of an account that has one there replaces its own oldest.
            await stack.enter_async_context(open_stream(http, admin))
            assert len(stream.hub) == 3
            alert_id = add_alert(clean_db, world.alice, "north")
            assert (await second.next_of("alert"))["id"] == alert_id
            assert (await third.next_of("alert"))["id"] == alert_id


# --- parts of the platform ------------------------------------------------------------------

_PART_SCRIPT = """
import sys, threading
from kernel.endpoint import MqttEndpoint
from gateway.presence import Presence
host, port, user, password, part = sys.argv[1:6]
Presence(MqttEndpoint(host, int(port), user, password), part).start()
threading.Event().wait()
"""


@pytest.mark.slow
async def test_a_part_that_dies_shows_as_down_with_the_time(http, broker: Broker):
    """A process announces itself (gateway.presence); SIGKILL makes the broker send its Last
    Will, and the screens get a `parts` event saying it is down, stamped with the time."""
    import subprocess
    import sys
    from datetime import datetime

    part = f"pipeline-t{uuid.uuid4().hex[:8]}"
    ep = broker.pipeline
    token = await token_for(http, "duty-north")
    proc = subprocess.Popen([sys.executable, "-c", _PART_SCRIPT, ep.host, str(ep.port),
                             ep.username, ep.password, part])
    try:
        async with open_stream(http, token) as feed:
            up = await feed.next_of("parts", timeout=30)
            while part not in up or not up[part]["up"]:
                up = await feed.next_of("parts", timeout=30)
            proc.kill()
            proc.wait(10)
            down = await feed.next_of("parts", timeout=30)
            while down.get(part, {}).get("up") is not False:
                down = await feed.next_of("parts", timeout=30)
            assert down[part]["reason"] == "lost"
            assert datetime.fromisoformat(down[part]["since"]).tzinfo is not None
        async with open_stream(http, token) as again:  # a screen opened later sees it too
            assert again.ready["parts"][part]["up"] is False
        family = await token_for(http, "family-alice")
        async with open_stream(http, family) as relative:  # families are not told
            assert relative.ready["parts"] == {}
    finally:
        if proc.poll() is None:
            proc.kill()
        with bus_publisher(broker.pipeline) as pub:  # clear the retained state
            pub.publish_raw(part_topic(part), b"", retain=True)
