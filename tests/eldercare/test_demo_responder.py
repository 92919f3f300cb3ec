"""`eldercare demo` starts the demo's responder as a supervised child after the web app (so
it stops first); `--no-responder` leaves it out, and `serve` never starts it (pure: the
parser and the list of parts, no process)."""

from __future__ import annotations

import pytest

from eldercare.cli import build_parser
from eldercare.run import platform_parts
from simulators.sinks import SinkAddresses

SINKS = SinkAddresses(smtp_port=2525, webhook_port=8025)


def _names(parts: list[tuple[str, list[str]]]) -> list[str]:
    return [name for name, _ in parts]


def test_the_demo_starts_the_responder_last_and_serve_never():
    assert _names(platform_parts([], SINKS, responder=True)) == [
        "sinks", "simulators", "pipeline", "dashboard", "jobs", "responder"]
    assert dict(platform_parts([], SINKS, responder=True))["responder"] == ["responder"]
    assert "responder" not in _names(platform_parts([], SINKS, responder=False))
    assert _names(platform_parts(["north"], None, responder=False)) == [
        "pipeline", "dashboard", "jobs"]


def test_no_responder_is_a_demo_flag_only():
    parser = build_parser()
    assert parser.parse_args(["demo"]).no_responder is False
    assert parser.parse_args(["demo", "--no-responder"]).no_responder is True
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--no-responder"])


def test_the_responder_part_takes_the_where_flags_and_a_seed():
    args = build_parser().parse_args(["responder", "--web-port", "8081", "--seed", "3"])
    assert (args.web_port, args.seed, args.logins) == (8081, 3, None)
