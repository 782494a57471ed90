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


# IPv6 forms that carry an IPv4 address (RFC 6052, 4291, 3056, 4380, 5214): a
# socket that connects to one of them may end up at the IPv4 address inside it,
# through the kernel (mapped), a NAT64 gateway or a tunnel relay. Each is judged
# as the IPv4 address it carries.
MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated "IPv4-compatible" ::a.b.c.d
NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
TEREDO = ipaddress.IPv6Network("2001::/32")
# Tunnels that a service has no reason to deliver through, whatever they carry:
# 6to4 relays are deprecated (RFC 7526), Teredo reaches NATed hosts via a relay,
# and the local-use NAT64 prefix is, by definition, not global. Named here
# because Python's own flags for them differ between versions.
NEVER = ((SIX_TO_FOUR, "6to4"), (TEREDO, "Teredo"), (NAT64[1], "local-use NAT64"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses that ``ip`` carries, each with the name of its form."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if ip in MAPPED:
        found.append(("IPv4-mapped", low32))
    elif ip in COMPATIBLE and int(ip) > 1:  # :: and ::1 are IPv6's own unspecified and loopback
        found.append(("IPv4-compatible", low32))
    if any(ip in net for net in NAT64):
        found.append(("NAT64", low32))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo  # the client address comes de-obfuscated (XOR 0xffffffff)
        found += [("Teredo server", server), ("Teredo client", client)]
    if (int(ip) >> 32) & 0xFDFFFFFF == 0x5EFE:  # ISATAP interface id 0:5efe or 200:5efe, any prefix
        found.append(("ISATAP", low32))
    return found


def refusal(ip: IPAddress) -> str | None:
    """Why the service must not call ``ip`` (e.g. "a loopback address"), or None for a public address.

    The one rule every form goes through: an IPv6 address that carries an IPv4
    address is refused when that IPv4 address is, and names it.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        for form, inner in embedded_ipv4(ip):
            reason = refusal(inner)
            if reason is not None:
                return f"the {form} form of {inner}, {reason}"
        for net, form in NEVER:
            if ip in net:
                return f"a {form} address (a tunnel that webhooks do not use)"
        if ip in MAPPED or ip in NAT64[0]:
            return None  # a translation of a public IPv4 address (which passed above), e.g. DNS64 answers
    # Most specific first: 127.0.0.1, 169.254.x.x and 240.x.x.x also count as "private".
    for reason, hit in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
        ("a private", ip.is_private),
        ("a non-public", not ip.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    ):
        if hit:
            return f"{reason} address"
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
                    f"'{host}' resolves to {address}, {reason}; webhooks may only call public "
                    "addresses (an operator can allow others with TRAINYARD_WEBHOOK_ALLOW_PRIVATE=true)"
                )
    return Target(url=url.strip(), scheme=scheme, host=host, port=port, address=addresses[0])
