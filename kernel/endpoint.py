"""Where an MQTT broker is and which account to use: a plain value, shared by every part."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class MqttEndpoint:
    """Host, port and credentials parsed from an mqtt:// URL."""

    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> MqttEndpoint:
        """Parse `mqtt://user:password@host:port`."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must start with mqtt://, got {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def url(self) -> str:
        """Back to an mqtt:// URL."""
        cred = f"{self.username}:{self.password}@" if self.username else ""
        return f"mqtt://{cred}{self.host}:{self.port}"
