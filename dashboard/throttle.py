"""Failed-login throttling: per (client, username) and per client, in fixed windows.

Only failures are remembered, so a person who types the right password is never slowed
down. Keying the account limit by client as well means nobody can lock a duty officer out of
the duty screen by failing logins in their name from somewhere else; the per-client limit
stops one client from guessing across many accounts. A client is its IPv4 address or its
IPv6 /64 (one subscriber's whole network). An attempt on an account is counted *before* the
password is checked, so parallel requests cannot get more guesses than the limit. The counters
live in this web process (the `limits` library's memory storage, whose keys expire): a restart
or a second web process starts them afresh.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

MAX_KEY_USERNAME = 128  # longer usernames are not real accounts; bound the key size


@dataclass(frozen=True)
class ThrottleSettings:
    """How many failed logins are allowed within the window."""

    per_account: int = 5  # per (client, username)
    per_address: int = 50  # per client, any usernames
    window_s: int = 900


def client_key(address: str) -> str:
    """The throttling key of a client address: IPv4 as is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


class LoginThrottle:
    """Counts login attempts and failures and says when a client must wait."""

    def __init__(self, settings: ThrottleSettings | None = None) -> None:
        s = settings or ThrottleSettings()
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._account = RateLimitItemPerSecond(s.per_account, s.window_s)
        self._address = RateLimitItemPerSecond(s.per_address, s.window_s)

    def _wait(self, item: RateLimitItem, *keys: str) -> int:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        return max(1, int(reset - time.time()) + 1)

    @staticmethod
    def _account_keys(address: str, username: str) -> tuple[str, str, str]:
        return ("login-account", client_key(address), username[:MAX_KEY_USERNAME].casefold())

    def begin(self, address: str, username: str) -> int | None:
        """Count an attempt on this account before its password is checked: None when it
        may go ahead, else the seconds until this client may try again."""
        addr = ("login-address", client_key(address))
        if not self._limiter.test(self._address, *addr):
            return self._wait(self._address, *addr)
        acct = self._account_keys(address, username)
        if not self._limiter.hit(self._account, *acct):
            return self._wait(self._account, *acct)
        return None

    def failed(self, address: str) -> None:
        """Count a failed login against the client (the account attempt is already counted)."""
        self._limiter.hit(self._address, "login-address", client_key(address))

    def succeeded(self, address: str, username: str) -> None:
        """Forget this client's attempts on the account it just logged in to."""
        self._limiter.clear(self._account, *self._account_keys(address, username))
