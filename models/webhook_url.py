"""Which webhook URLs the service may call.

A webhook URL comes from a user, and the service POSTs to it from inside its own
network. Without a check, ``http://169.254.169.254/`` (a cloud metadata service)
or ``http://10.0.0.5:5432/`` would turn the service into a proxy into that
network. The API checks the URL at submit time; the delivery worker checks it
again before every attempt and connects to the very address it checked, so a
DNS answer that changes in between (DNS rebinding) gains nothing.

Plain ``socket`` and ``ipaddress``: the API and the worker both use it.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class UnsafeUrl(ValueError):
    """The URL is refused; the message says why, in words for the user."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``address``, present ``host`` (Host header, TLS name)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(ip: IPAddress) -> str | None:
    """Why the service must not call ``ip``, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    # Most specific first: 127.0.0.1, 169.254.x.x and 240.x.x.x also count as "private".
    for reason, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    ):
        if hit:
            return reason
    return None


def check_url(url: str, *, allow_private: bool, resolver: Resolver = _system_resolver) -> Target:
    """Parse ``url``, resolve its host and refuse it unless every address is public.

    Raises:
        UnsafeUrl: not http(s), no host, a host that does not resolve, or one
            that resolves to a private, loopback, link-local, multicast or
            reserved address (allowed only with ``allow_private``).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl(f"only http and https URLs can receive webhooks. Received: scheme '{parts.scheme}'")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"the host '{host}' does not resolve ({exc})") from exc
    if not addresses:
        raise UnsafeUrl(f"the host '{host}' does not resolve")
    if not allow_private:
        # Every address, not only the first: a host with one public and one
        # private record could otherwise be steered to the private one.
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise UnsafeUrl(
                    f"'{host}' resolves to {address}, a {reason} address; webhooks may only call public "
                    "addresses (an operator can allow others with TRAINYARD_WEBHOOK_ALLOW_PRIVATE=true)"
                )
    return Target(url=url.strip(), scheme=scheme, host=host, port=port, address=addresses[0])
