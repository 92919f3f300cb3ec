"""The one interface every detection rule implements, and a base class with no-op hooks.

A rule is a stateless object: what it remembers lives in the resident's `DeviceState`s (its
own slots, or `DeviceState.extra[name]` for a rule added later), so one rule instance serves
every resident, and a resident's state is one JSON record. The detector calls the hooks of
its rules in registry order (`alerts.rules.DEFAULT_RULES`), which is also the order of their
decisions for one record or tick. Rules decide through `ResidentState.em` (the `Emitter`),
which keeps one episode per device and alert type and clears an alert only when no device
of the resident still has it open.

For one record of a device, the detector calls:

1. `before` on every rule (the record is known, the device's watermark has not moved);
2. `on_alive` on every rule, when the record is newer than the device's watermark (the
   device speaks), then moves the watermark;
3. `on_record` on the rules whose `consumes` holds the record's type.

`on_tick` runs for every device on a tick, `on_context` when the context changed (settings,
devices, learned habits). See docs/alerts.md, "How rules plug in".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from alerts.rules.state import DeviceState, ResidentState
from gateway.records import Record


class Rule(Protocol):
    """A family of detection rules over one resident's device records."""

    name: str
    """Short unique name (logs; the key of its state in `DeviceState.extra`)."""

    consumes: frozenset[type[Record]]
    """The record types `on_record` is called for."""

    def on_context(self, rs: ResidentState, dev: DeviceState) -> None:
        """The resident's context changed (settings, devices, learned habits): re-derive
        what depends on it, e.g. a pending deadline."""
        ...

    def before(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """A record of `dev` at event time `t`, before the device's watermark moves."""
        ...

    def on_alive(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """`dev` speaks: `rec` is newer than its watermark (`dev.seen_t`, still the old one)."""
        ...

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """Apply a record of a type in `consumes`."""
        ...

    def on_tick(self, rs: ResidentState, dev: DeviceState, now: float | None,
                wall_now: datetime) -> None:
        """Time passed while the device was silent: `now` is its effective event time
        (watermark + wall time since that record arrived; None while never heard)."""
        ...

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """This rule's state of `dev`: keys merged into the device's JSON snapshot."""
        ...

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """Restore from the device's snapshot (raise KeyError/TypeError/ValueError if it is
        unreadable: the detector then starts the resident afresh)."""
        ...


class RuleBase:
    """No-op hooks, so a rule implements only what it uses (the detector skips a hook a rule
    does not override, which keeps the per-reading path short)."""

    name = ""
    consumes: frozenset[type[Record]] = frozenset()

    def on_context(self, rs: ResidentState, dev: DeviceState) -> None:
        """Nothing depends on the context."""

    def before(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """Nothing to do before the watermark moves."""

    def on_alive(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """Liveness does not matter to this rule."""

    def on_record(self, rs: ResidentState, dev: DeviceState, rec: Record, t: float) -> None:
        """No records consumed."""

    def on_tick(self, rs: ResidentState, dev: DeviceState, now: float | None,
                wall_now: datetime) -> None:
        """No time-based decisions."""

    def dump(self, dev: DeviceState) -> dict[str, Any]:
        """No state."""
        return {}

    def load(self, dev: DeviceState, d: dict[str, Any]) -> None:
        """No state."""


def overrides(rule: Rule, hook: str) -> bool:
    """True if `rule` implements `hook` itself (not RuleBase's no-op)."""
    return getattr(type(rule), hook, None) is not getattr(RuleBase, hook)
