"""The platform as a user runs it: `eldercare demo`/`serve` in a child process, its output
collected, and its supervised children found (and killed) through /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from eldercare.embedded import free_port
from tests.support.wait import wait_until


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (zombies count as gone)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    """The process's argv (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def child_pid(root: int, name: str) -> int | None:
    """The pid of the supervised child `name` (a process directly below `serve`/`demo`)."""
    command = {"simulators": "simulate"}.get(name, name)  # `eldercare <command>`
    for pid in (p for p in descendants(root) if parent(p) == root):
        argv = cmdline(pid)
        program = Path(argv[0]).name if argv else ""
        if name in ("postgres", "mosquitto") and program == name:
            return pid
        if program.startswith("python") and argv[1:4] == ["-m", "eldercare.cli", command]:
            return pid
    return None


def parent(pid: int) -> int:
    """The parent's pid (-1 once the process is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def kill_and_wait(root: int, name: str) -> None:
    """SIGKILL the child `name` of `serve`/`demo` (pid `root`); wait for its successor."""
    pid = wait_until(lambda: child_pid(root, name), timeout=60, what=name)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    def successor() -> bool:
        now = child_pid(root, name)
        return now is not None and now != pid

    wait_until(successor, timeout=60, what=f"{name} restarted")


def flags_only_env() -> dict[str, str]:
    """The caller's environment without any ELDERCARE_* setting: only flags may say where."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}


class Platform:
    """`eldercare <argv>` run as a user would, its output collected."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "eldercare.cli", *argv], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")),
                         daemon=True).start()  # type: ignore[union-attr]

    @property
    def text(self) -> str:
        """Everything it printed so far."""
        return "".join(self.lines)

    def wait_banner(self) -> str:
        """Wait for the banner the platform prints once it is up; everything printed."""
        wait_until(lambda: "Press Ctrl-C" in self.text or self.proc.poll() is not None,
                   timeout=180, what="banner")
        assert self.proc.poll() is None, self.text
        return self.text

    def interrupt(self) -> int:
        """Ctrl-C; the exit code once every process it started is gone."""
        pids = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        wait_until(lambda: not any(alive(p) for p in pids), timeout=20,
                   what="every process it started to exit")
        return code


def demo_flags(demo_dir: Path) -> tuple[int, list[str]]:
    """Free ports and the data folder as `demo`/`serve` flags; the web port first."""
    web, mqtt_port, pg = free_port(), free_port(), free_port()
    return web, ["--web-port", str(web), "--mqtt-port", str(mqtt_port), "--pg-port", str(pg),
                 "--data-dir", str(demo_dir)]
