"""Failed-login throttling: a moving window per (client address, username) and per address.

Only failures count, so a person who types the right password is never slowed down. Keying
the account limit by address as well means nobody can lock a duty officer out of the duty
screen by failing logins in their name from somewhere else; the per-address limit stops one
client from guessing many accounts. The counters live in this web process (the `limits`
library's memory storage): restart or a second web process starts them afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class ThrottleSettings:
    """How many failed logins are allowed within the window."""

    per_account: int = 5  # per (client address, username)
    per_address: int = 50  # per client address, any usernames
    window_s: int = 900


class LoginThrottle:
    """Counts failed logins and says when a client must wait."""

    def __init__(self, settings: ThrottleSettings | None = None) -> None:
        s = settings or ThrottleSettings()
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._account = RateLimitItemPerSecond(s.per_account, s.window_s)
        self._address = RateLimitItemPerSecond(s.per_address, s.window_s)

    def _keys(self, address: str, username: str
              ) -> tuple[tuple[RateLimitItemPerSecond, tuple[str, ...]], ...]:
        return ((self._account, ("login-account", address, username.casefold())),
                (self._address, ("login-address", address)))

    def retry_after(self, address: str, username: str) -> int | None:
        """Seconds until this client may try this username again, or None when it may now."""
        for item, keys in self._keys(address, username):
            if not self._limiter.test(item, *keys):
                reset = self._limiter.get_window_stats(item, *keys).reset_time
                return max(1, int(reset - time.time()) + 1)
        return None

    def failed(self, address: str, username: str) -> None:
        """Count a failed login."""
        for item, keys in self._keys(address, username):
            self._limiter.hit(item, *keys)

    def succeeded(self, address: str, username: str) -> None:
        """Forget this client's failures for the account it just logged in to."""
        item, keys = self._keys(address, username)[0]
        self._limiter.clear(item, *keys)
