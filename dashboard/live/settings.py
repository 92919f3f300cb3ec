"""Tunables of the live feed, in one place: the feed's parts read them when they start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StreamSettings:
    """Tunables of the live feed (tests shorten them)."""

    heartbeat_s: float = 15.0
    retry_ms: int = 3000
    queue_limit: int = 500
    close_grace_s: float = 5.0
    db_timeout_s: float = 5.0
    db_ping_s: float = 30.0
    scope_refresh_s: float = 30.0
    auth_cache_s: float = 3600.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    # Open streams allowed per account and per client address (IPv4, or IPv6 /64); a new
    # stream beyond either closes the oldest one, so a screen that reconnects after losing
    # its connection is never locked out by its own half-open old stream.
    max_per_account: int = 5
    max_per_address: int = 50
