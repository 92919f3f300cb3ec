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


def test_the_demo_links_its_messages_to_its_own_web_address(monkeypatch):
    """Without a configured public address a message's link reads "Open: /alerts/3", which
    no e-mail or robot message can follow: the demo gives its own."""
    from eldercare.run import demo_public_url
    from eldercare.settings import Settings

    monkeypatch.delenv("ELDERCARE_NOTIFY__PUBLIC_URL", raising=False)
    assert demo_public_url(Settings(web_port=8091)) == {
        "ELDERCARE_NOTIFY__PUBLIC_URL": "http://127.0.0.1:8091"}
    assert demo_public_url(Settings(web_host="0.0.0.0")) == {  # noqa: S104
        "ELDERCARE_NOTIFY__PUBLIC_URL": "http://127.0.0.1:8080"}
    configured = Settings.model_validate({"notify": {"public_url": "https://care.example.org"}})
    assert demo_public_url(configured) == {}
