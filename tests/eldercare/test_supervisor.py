"""The supervisor of `serve`/`demo`: restart policy on an injected clock, real child
processes, and SIGKILL of each child of a real `eldercare serve`."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from eldercare.embedded import ManagedProcess, die_with_parent
from eldercare.pipeline import session_client_ids
from eldercare.run import _child
from eldercare.supervisor import Backoff, Child, RestartPolicy, Supervisor, exit_cause
from gateway.presence import part_topic
from tests.support.live import bus_publisher
from tests.support.platform import Platform, demo_flags, flags_only_env, kill_and_wait
from tests.support.services import Broker
from tests.support.wait import wait_until


class _Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_starts_fast_doubles_and_is_capped():
    b = Backoff(initial_s=0.5, factor=2, cap_s=30)
    assert [b.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_policy_resets_after_a_healthy_run_and_flags_a_crash_loop():
    clock = _Ticks()
    policy = RestartPolicy("pipeline", Backoff(reset_after_s=60, crash_loop_after=3))
    policy.started(clock.now)
    clock.now += 1
    assert policy.exited(clock.now) == 0.5
    assert policy.down_since == clock.now and not policy.due(clock.now)
    clock.now += 0.5
    assert policy.due(clock.now)
    policy.started(clock.now)
    clock.now += 1
    assert policy.exited(clock.now) == 1.0  # crashed again soon: wait longer
    clock.now += 1
    assert policy.start_failed(clock.now) == 2.0
    assert policy.crash_looping
    policy.started(clock.now)
    clock.now += 120  # ran long enough to count as healthy
    assert policy.exited(clock.now) == 0.5
    assert not policy.crash_looping


def test_exit_cause_names_the_signal():
    assert exit_cause(-9) == "signal SIGKILL"
    assert exit_cause(3) == "exit code 3"


@dataclass
class _Noted(ManagedProcess):
    """A real child process that notes, in a list shared with its siblings, when the
    supervisor stops it (the order of shutdown)."""

    stopped: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 15.0) -> None:
        self.stopped.append(self.name)
        super().stop(timeout)


def _sleeper(name: str, stopped: list[str] | None = None) -> ManagedProcess:
    """A child like those of `serve`: it dies with the thread that started it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            preexec_fn=die_with_parent)
    return _Noted(name, proc, stopped=stopped if stopped is not None else [])


def _kill(child: Child) -> int:
    """SIGKILL the child's process, reap it, and return its pid."""
    assert child.process is not None
    child.process.proc.kill()
    child.process.proc.wait(10)
    return child.process.proc.pid


def _poll_until(sup: Supervisor, clock: _Ticks, done: Callable[[], bool], what: str,
                step_s: float = 0.0) -> None:
    """Poll like `serve` does (restarts finish on their own threads) until `done()`,
    moving the injected clock by `step_s` per poll."""
    def polled() -> bool:
        sup.poll()
        clock.now += step_s
        return done()
    wait_until(polled, timeout=30, what=what)


def test_supervisor_restarts_a_killed_child_and_logs_why(caplog):
    clock = _Ticks()
    sup = Supervisor(clock)
    try:
        first = sup.add("worker", lambda: _sleeper("worker"))
        other = sup.add("other", lambda: _sleeper("other"))
        assert first.process is not None and other.process is not None
        old, other_pid = first.process.proc.pid, other.process.proc.pid
        first.process.proc.send_signal(signal.SIGKILL)
        first.process.proc.wait(10)
        with caplog.at_level("WARNING", logger="eldercare.supervisor"):
            sup.poll()
            assert sup.down() == {"worker": clock.now}
            assert first.process is None  # not yet: the first restart waits initial_s
            clock.now += Backoff().initial_s
            _poll_until(sup, clock, lambda: first.process is not None, "worker restarted")
        assert first.process is not None and first.process.proc.pid != old
        assert other.process is not None and other.process.proc.pid == other_pid
        assert "worker exited (signal SIGKILL); restarting in 0.5s" in caplog.text
        assert "worker restarted" in caplog.text
        assert sup.down() == {}
    finally:
        sup.stop_all()


def test_a_child_that_cannot_start_is_retried_and_the_others_keep_running(caplog):
    clock = _Ticks()
    sup = Supervisor(clock)
    attempts: list[int] = []

    def broken() -> ManagedProcess:
        attempts.append(1)
        if len(attempts) > 1:
            raise RuntimeError("port 1883 is already in use")
        return _sleeper("broker")

    try:
        broker = sup.add("broker", broken)
        web = sup.add("web", lambda: _sleeper("web"))
        assert broker.process is not None
        broker.process.proc.kill()
        broker.process.proc.wait(10)
        with caplog.at_level("WARNING", logger="eldercare.supervisor"):
            _poll_until(sup, clock, lambda: len(attempts) >= 4 and "could not" in caplog.text,
                        "restart attempts", step_s=60)
        assert broker.process is None
        assert "broker could not be restarted: port 1883 is already in use" in caplog.text
        assert web.process is not None and web.process.alive()
    finally:
        sup.stop_all()


class _SlowStart:
    """Starts a child that stands for the embedded PostgreSQL: the first start is immediate,
    every restart blocks until the test releases it (a database slow to accept logins)."""

    def __init__(self, name: str, stopped: list[str] | None = None) -> None:
        self.name = name
        self.stopped = stopped
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.started: list[ManagedProcess] = []

    def __call__(self) -> ManagedProcess:
        self.calls += 1
        if self.calls > 1:
            self.entered.set()
            self.release.wait(60)
        proc = _sleeper(self.name, self.stopped)
        self.started.append(proc)
        return proc


def test_a_slow_restart_does_not_hold_up_the_restart_of_another_child(caplog):
    clock = _Ticks()
    sup = Supervisor(clock)
    slow = _SlowStart("postgres")
    try:
        db = sup.add("postgres", slow)
        pipe = sup.add("pipeline", lambda: _sleeper("pipeline"))
        web = sup.add("dashboard", lambda: _sleeper("dashboard"))
        assert web.process is not None
        web_pid = web.process.proc.pid
        _kill(db)
        with caplog.at_level("WARNING", logger="eldercare.supervisor"):
            _poll_until(sup, clock, slow.entered.is_set, "the slow restart begins", step_s=1)
            old = _kill(pipe)
            _poll_until(sup, clock, lambda: pipe.process is not None, "pipeline restarted",
                        step_s=1)
            assert pipe.process is not None and pipe.process.proc.pid != old
            # The slow restart is still in progress, long past its due time, and was not
            # started a second time.
            assert db.process is None and slow.calls == 2
            assert "pipeline restarted" in caplog.text
            assert "postgres restarted" not in caplog.text
            assert set(sup.down()) == {"postgres"}
            slow.release.set()
            _poll_until(sup, clock, lambda: db.process is not None, "postgres restarted")
        assert "postgres restarted (pid" in caplog.text and slow.calls == 2
        # Started on a restart thread, alive after it returned: a child dies with the thread
        # that started it (PR_SET_PDEATHSIG), so that thread outlives the restart.
        assert pipe.process.alive() and db.process is not None and db.process.alive()
        assert web.process.proc.pid == web_pid and web.process.alive()
    finally:
        slow.release.set()
        sup.stop_all()


def test_shutdown_during_a_slow_restart_stops_the_others_first_then_what_it_started():
    clock = _Ticks()
    sup = Supervisor(clock)
    stopped: list[str] = []
    slow = _SlowStart("postgres", stopped)
    stopper = threading.Thread(target=sup.stop_all)
    try:
        db = sup.add("postgres", slow)
        sup.add("pipeline", lambda: _sleeper("pipeline", stopped))
        sup.add("dashboard", lambda: _sleeper("dashboard", stopped))
        _kill(db)
        stopped.clear()  # the SIGKILLed one is not stopped by the supervisor
        _poll_until(sup, clock, slow.entered.is_set, "the slow restart begins", step_s=1)
        stopper.start()
        wait_until(lambda: stopped == ["dashboard", "pipeline"], timeout=30,
                   what="the children started after the slow one stopped first")
        assert stopper.is_alive()  # it waits for the restart in progress...
        slow.release.set()
        stopper.join(60)
        assert not stopper.is_alive()
        # ...and stops what that restart started: nothing is left running.
        assert stopped == ["dashboard", "pipeline", "postgres"]
        assert len(slow.started) == 2 and not slow.started[1].alive()
        assert db.process is None
        clock.now += 3600
        sup.poll()  # after shutdown, nothing is restarted
        assert slow.calls == 2
    finally:
        slow.release.set()
        if not stopper.is_alive():
            sup.stop_all()


def test_a_restart_that_finished_after_the_last_poll_is_stopped_at_shutdown():
    clock = _Ticks()
    sup = Supervisor(clock)
    slow = _SlowStart("postgres")
    try:
        db = sup.add("postgres", slow)
        _kill(db)
        _poll_until(sup, clock, slow.entered.is_set, "the restart begins", step_s=1)
        slow.release.set()
        wait_until(lambda: len(slow.started) == 2, timeout=30, what="the restart started it")
    finally:
        slow.release.set()
        sup.stop_all()  # no poll in between: the supervisor has not seen the new process
    assert len(slow.started) == 2 and not slow.started[1].alive()
    assert db.process is None


# --- a real `eldercare serve` ---------------------------------------------------------


class _HealthPoller:
    """Polls /api/v1/health in the background and counts the times nothing answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                httpx.get(self.url, timeout=5)  # any HTTP status is an answer
                self.answers += 1
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))

    def wait_beyond(self, answers: int, what: str) -> None:
        """Wait until the web app has answered more than `answers` times."""
        wait_until(lambda: self.answers > answers, timeout=30, what=what)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.timeout(600)
def test_serve_restarts_each_killed_child_while_the_web_app_answers(demo_dir):
    """SIGKILL of each child of `eldercare serve`: it comes back, the restart is logged with
    its cause, and the web app answers throughout (except, of course, while the web app
    itself is the one restarting)."""
    web, flags = demo_flags(demo_dir)
    serve = Platform(["serve", *flags], flags_only_env())
    health = f"http://127.0.0.1:{web}/api/v1/health"
    try:
        serve.wait_banner()
        root = serve.proc.pid
        for name in ("pipeline", "jobs", "mosquitto", "postgres"):
            poller = _HealthPoller(health)
            poller.wait_beyond(0, "web app answers")
            kill_and_wait(root, name)
            poller.wait_beyond(poller.answers, f"web app answers after the {name} restart")
            poller.stop()
            assert poller.failures == [], (name, poller.failures)
            # The successor process exists before the supervisor logs it as restarted (a
            # service is logged once it is ready).
            wait_until(functools.partial(_logged, serve, f"{name} restarted"), timeout=60,
                       what=f"the {name} restart logged")
            assert f"{name} exited (signal SIGKILL)" in serve.text
        kill_and_wait(root, "dashboard")
        wait_until(lambda: _answers(health), timeout=60, what="web app back")
        assert "dashboard exited (signal SIGKILL)" in serve.text
        assert serve.proc.poll() is None, serve.text
    finally:
        code = serve.interrupt()
    assert code == 0, serve.text


def _logged(platform: Platform, text: str) -> bool:
    return text in platform.text


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return True



def test_serve_waits_for_an_external_database_that_is_down(own_pg, broker, demo_dir):
    """`serve` with an external database that is down at start waits for it (and says so)
    instead of exiting; once it is up, everything starts."""
    from eldercare.embedded import free_port, start_postgres

    cfg, procs = own_pg
    procs[0].stop()
    env = flags_only_env()
    env.update({"ELDERCARE_DATABASE_URL": cfg.url, "ELDERCARE_DATABASE_OWNER_URL": cfg.owner_url,
                "ELDERCARE_MQTT_URL": broker.pipeline.url(),
                "ELDERCARE_MQTT_ADMIN_URL": broker.admin.url(),
                "ELDERCARE_JWT_SECRET": "y" * 40, "ELDERCARE_DATA_DIR": str(demo_dir)})
    serve = Platform(["serve", "--web-port", str(free_port())], env)
    try:
        wait_until(lambda: "database unavailable" in serve.text or serve.proc.poll() is not None,
                   timeout=60, what="serve says it waits for the database")
        assert serve.proc.poll() is None, serve.text
        procs[0] = start_postgres(cfg)
        serve.wait_banner()
    finally:
        code = serve.interrupt()
        _forget_main_pipeline(broker)
    assert code == 0, serve.text


def _forget_main_pipeline(broker: Broker) -> None:
    """The session broker outlives this test: drop the persistent sessions of the `main`
    pipeline `serve` ran (they would queue every later test's messages) and its part states."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    for client_id in session_client_ids("main"):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=MQTTProtocolVersion.MQTTv5)
        client.username_pw_set(broker.pipeline.username, broker.pipeline.password)
        client.connect("127.0.0.1", broker.port, clean_start=True)
        client.disconnect()  # session expiry 0 (the default): the session ends here
    with bus_publisher(broker.pipeline) as pub:
        for part in ("pipeline", "jobs"):
            pub.publish_raw(part_topic(part), b"", retain=True)


def test_children_have_their_own_process_group():
    """A terminal's Ctrl-C goes to the foreground process group: only `demo`/`serve` itself
    must get it, and stop its children in order (the simulators' clean power-offs before
    the pipeline stops, the database last), not every child at once."""
    child = _child("help", ["--help"], {**os.environ})
    try:
        assert os.getpgid(child.proc.pid) == child.proc.pid != os.getpgid(0)
    finally:
        child.proc.wait(30)
