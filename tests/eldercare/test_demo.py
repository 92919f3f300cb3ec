"""`eldercare demo` as a newcomer runs it: everything starts, an SOS shows up, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx

from eldercare.embedded import free_port
from gateway.provisioning import DeviceCredentials
from gateway.schema import Channel
from tests.support.devices import RawDevice
from tests.support.platform import (
    Platform,
    alive,
    demo_flags,
    descendants,
    flags_only_env,
    kill_and_wait,
)
from tests.support.wait import wait_until


def test_demo_end_to_end_and_clean_shutdown(demo_dir):
    web, mqtt_port, pg = free_port(), free_port(), free_port()
    env = os.environ.copy()
    for key in ("ELDERCARE_DATABASE_URL", "ELDERCARE_DATABASE_OWNER_URL", "ELDERCARE_MQTT_URL"):
        env.pop(key, None)
    env.update({"ELDERCARE_DATA_DIR": str(demo_dir), "ELDERCARE_WEB_PORT": str(web),
                "ELDERCARE_MQTT_PORT": str(mqtt_port), "ELDERCARE_PG_PORT": str(pg),
                "ELDERCARE_DEMO_HOMES": "20"})
    proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", "demo"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: any("Press Ctrl-C" in ln for ln in lines) or proc.poll() is not None,
                   timeout=180, what="demo banner")
        text = "".join(lines)
        assert proc.poll() is None, text
        assert f"http://127.0.0.1:{web}/" in text and f"mqtt://127.0.0.1:{mqtt_port}" in text
        duty = re.search(r"duty_officer\s+(\S+)\s+(\S+)", text)
        assert duty, text
        api = f"http://127.0.0.1:{web}/api/v1"
        token = httpx.post(f"{api}/auth/token", data={"username": duty[1],
                                                      "password": duty[2]}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        residents = httpx.get(f"{api}/residents", headers=auth).json()
        assert len(residents) == 10  # 20 homes over two sites; a duty officer sees one
        creds = [DeviceCredentials(**c)
                 for c in json.loads((demo_dir / "demo-devices.json").read_text())]
        assert len(creds) == 40
        # An installer adds a pendant to a running demo; it works at once.
        added = subprocess.run([sys.executable, "-m", "eldercare.cli", "device", "add",
                                "--resident", str(residents[0]["id"]), "--type", "call_button"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        button = DeviceCredentials(**json.loads(added.stdout))
        dev = RawDevice(button, mqtt_port)
        wait_until(dev.connected.is_set, what="new pendant connects")
        dev.publish(Channel.EVENT, json.dumps({"ts": int(time.time() * 1000),
                                               "seq": 10**9, "type": "sos"}).encode())

        def sos_visible() -> bool:
            alerts = httpx.get(f"{api}/alerts", params={"type": "sos"}, headers=auth).json()
            return any(a["resident_id"] == button.resident_id for a in alerts)

        # Behaviour only; the SOS latency target is measured by `python -m benchmarks alerts`
        # (benchmarks/alerts/, docs/benchmarks.md), not asserted here.
        wait_until(sos_visible, timeout=30, what="SOS alert in the API")
        dev.close()
        # The SOS reaches the site's group robot through the demo's local receivers, and the
        # Sent notifications page's API shows it delivered (docs/alerts.md, "The demo's
        # receivers"); the banner says where to look.
        assert "/admin/notifications" in text and "/inbox" in text
        inbox = demo_dir / "sinks" / "inbox.jsonl"

        def received() -> str:
            return inbox.read_text() if inbox.exists() else ""

        wait_until(lambda: '"wecom"' in received() or '"dingtalk"' in received(),
                   timeout=90, what="the group robot message in the demo's webhook sink")
        site = residents[0]["site_id"]

        def delivered() -> bool:
            sent = httpx.get(f"{api}/sites/{site}/notifications", headers=auth).json()
            return any(n["status"] == "delivered" and n["alert_id"] is not None
                       for n in sent["notifications"])

        wait_until(delivered, timeout=30, what="a delivered row on Sent notifications")
        wait_until(lambda: len(httpx.get(f"{api}/residents", headers=auth).json()) == 10
                   and any(d["last_seen"] for r in httpx.get(f"{api}/residents",
                                                             headers=auth).json()
                           for d in r["devices"]),
                   timeout=90, what="simulated devices reporting")
        family = re.search(r"family\s+(\S+)\s+(\S+)", text)
        assert family
        ftoken = httpx.post(f"{api}/auth/token", data={"username": family[1],
                                                       "password": family[2]}).json()
        fam = httpx.get(f"{api}/residents",
                        headers={"Authorization": f"Bearer {ftoken['access_token']}"}).json()
        assert len(fam) == 1
        pids = descendants(proc.pid)
        assert len(pids) >= 5  # postgres (+workers), mosquitto, pipeline, web app, simulators
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    wait_until(lambda: not any(alive(p) for p in pids), timeout=20,
               what="every process the demo started to exit")


def _login(api: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{api}/auth/token", data={"username": username,
                                                      "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_demo_with_flags_only_uses_them_in_every_process(demo_dir):
    """The README's `eldercare demo --web-port W --mqtt-port M --pg-port P`: no environment
    variable says where, so every child (pipeline, web app, jobs, simulators) must get the
    flags from the parent; the banner's addresses are the ones in use."""
    web, flags = demo_flags(demo_dir)
    demo = Platform(["demo", *flags, "--homes", "4"], flags_only_env())
    try:
        text = demo.wait_banner()
        assert f"http://127.0.0.1:{web}/" in text and f"mqtt://127.0.0.1:{flags[3]}" in text
        assert f"127.0.0.1:{flags[5]}/eldercare" in text
        assert str(demo_dir / "demo-logins.json") in text
        api = f"http://127.0.0.1:{web}/api/v1"
        duty = re.search(r"duty_officer\s+(\S+)\s+(\S+)", text)
        assert duty, text
        auth = _login(api, duty[1], duty[2])

        def telemetry_flows() -> bool:
            residents = httpx.get(f"{api}/residents", headers=auth).json()
            return any(d["last_seen"] for r in residents for d in r["devices"])

        # Simulators -> broker -> pipeline -> database -> web app, all on the flagged ports.
        wait_until(telemetry_flows, timeout=120, what="simulated telemetry in the API")
        # The demo's responder (simulators/responder.py) is a supervised child too: it logs in
        # to this web app, found through the flags alone, as each site's simulated carer.
        assert "Demo responder:" in text and "--no-responder" in text
        wait_until(lambda: demo.text.count("responder answering the alerts of site") == 2,
                   timeout=60, what="the responder logged in at both sites")
        # The simulators are supervised like every other child (tests/eldercare/
        # test_supervisor.py kills the others under `serve`).
        kill_and_wait(demo.proc.pid, "simulators")
        wait_until(lambda: "simulators restarted" in demo.text, timeout=30,
                   what="the restart logged")
        assert "simulators exited (signal SIGKILL)" in demo.text
        assert demo.proc.poll() is None, demo.text
    finally:
        running = len(demo.text)
        code = demo.interrupt()
    assert code == 0, demo.text
    assert "eldercare stopped." in demo.text
    # A planned stop is not a device fault: the pipeline stops before the simulated homes
    # go quiet, so the stop opens no device_offline alert (and pages no carer).
    assert "opened device_offline" not in demo.text[running:], demo.text[running:]


def test_serve_with_flags_only_and_admin_commands_reach_it(demo_dir):
    """`eldercare serve` with flags only; an admin command given the same flags creates an
    account in that database (it says where it connects), and the web app logs it in."""
    web, flags = demo_flags(demo_dir)
    env = flags_only_env()
    serve = Platform(["serve", *flags], env)
    try:
        serve.wait_banner()
        added = subprocess.run([sys.executable, "-m", "eldercare.cli", "user", "add", *flags[2:],
                                "--username", "flags-admin", "--role", "admin",
                                "--password", "flags-admin-password-1"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        assert (f"using database 127.0.0.1:{flags[5]}/eldercare (embedded, data dir {demo_dir})"
                in added.stderr)
        api = f"http://127.0.0.1:{web}/api/v1"
        auth = _login(api, "flags-admin", "flags-admin-password-1")
        assert httpx.get(f"{api}/residents", headers=auth).status_code == 200
        assert serve.proc.poll() is None, serve.text
    finally:
        code = serve.interrupt()
    assert code == 0, serve.text
    assert "Demo responder" not in serve.text  # only the demo answers alerts by itself
