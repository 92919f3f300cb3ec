"""Server-side request forgery guard for user-supplied notification URLs (webhook targets, push
endpoints): refuse a URL whose host resolves to any address that is not globally routable
(loopback, private, link-local incl. cloud metadata, CGNAT, multicast, reserved, ...).

The check resolves the name once before the request; the HTTP client resolves it again when it
connects, so a name whose DNS answer changes in between (DNS rebinding) is not caught here. See
"Private addresses" in docs/alerts.md for what else to put in place.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from urllib.parse import urlsplit

from alerts.notify.channels.base import SendError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SETTING_HINT = ("for a receiver on your own network the operator can set "
                "notify.allow_private_targets = true (ELDERCARE_NOTIFY__ALLOW_PRIVATE_TARGETS)")

_UNSAFE_URL_CHARS = re.compile(r"[\\\s\x00-\x1f\x7f]")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, NAT64 (64:ff9b::/96), 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_problem(address: IPAddress) -> str | None:
    """Why `address` must not be sent to (e.g. "loopback"), or None if it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (IPv4 inside IPv6)" if problem else None
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (this includes cloud metadata services)"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local (fec0::/10, deprecated)"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared carrier-grade NAT (100.64.0.0/10)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


def _ip(sockaddr_host: str) -> IPAddress:
    """An address as getaddrinfo reports it (IPv6 may carry a %scope)."""
    return ipaddress.ip_address(sockaddr_host.split("%", 1)[0])


def url_shape_problem(url: str) -> str | None:
    """Why `url` must not be used even before resolving it, or None.

    HTTP clients and `urlsplit` disagree about some URLs: requests/urllib3 ends the host at a
    backslash (`https://10.0.0.5\\x.example.com/` connects to 10.0.0.5 while `urlsplit`
    sees `10.0.0.5\\x.example.com`), and non-ASCII host names are encoded with IDNA 2003 by
    the resolver but IDNA 2008 by httpx. So such URLs are refused outright.
    """
    if _UNSAFE_URL_CHARS.search(url):
        return "contains a backslash, a space or a control character"
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return "is not a valid URL"
    if not host.isascii():
        return "has a non-ASCII host name: use its xn-- (punycode) form"
    return None


def check_public_url(url: str, what: str) -> None:
    """Raise SendError unless every address the URL's host resolves to is globally routable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SendError(f"{what}: {url!r} is not an http(s) URL", retryable=False)
    shape = url_shape_problem(url)
    if shape is not None:
        raise SendError(f"{what}: the URL {url!r} {shape}", retryable=False)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise SendError(f"{what}: invalid URL {url!r}: {exc}", retryable=False) from None
    if not host:
        raise SendError(f"{what}: the URL {url!r} has no host", retryable=False)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SendError(f"{what}: cannot resolve host {host!r} ({exc.strerror})",
                        retryable=True) from exc
    except (UnicodeError, ValueError) as exc:
        raise SendError(f"{what}: invalid host name {host!r}: {exc}", retryable=False) from None
    if not infos:
        raise SendError(f"{what}: host {host!r} has no addresses", retryable=True)
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = _ip(str(sockaddr[0]))
        problem = address_problem(address)
        if problem is not None:
            logger.warning("%s: refused %s: host %s resolves to %s (%s)", what, url, host,
                           address, problem)
            raise SendError(
                f"{what}: refused to send to {host!r}: it resolves to an address that is not "
                f"public ({problem}), and notifications go only to publicly routable "
                f"addresses. Use the receiver's public address, or {SETTING_HINT}.",
                retryable=False)
