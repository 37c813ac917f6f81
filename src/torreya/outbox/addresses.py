"""Where a webhook may point: public addresses only, unless the platform allows private ones.

A URL that resolves into the server's own network (loopback, private ranges, link-local,
the cloud metadata address …) could be used to reach services that trust the server
(SSRF). The check runs when the URL is saved and again before every delivery, since a name
can resolve differently later.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from torreya.errors import InvalidRequestError


class PrivateAddressError(InvalidRequestError):
    code = "private_address"
    message = ("This address points into a private network. Webhooks may only go to public "
               "addresses unless the platform administrator allows private ones.")


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; else 422 naming `url`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise InvalidRequestError("Give an http:// or https:// address.", field="url")
    return url.strip()


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global address, and so is every IPv4 address an IPv6 one carries: IPv4-mapped
    (::ffff:127.0.0.1), IPv4-compatible (::127.0.0.1, which Python counts as global),
    NAT64, 6to4 and Teredo all lead to the IPv4 address inside."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inside = [address.ipv4_mapped, address.sixtofour,
                  address.teredo[1] if address.teredo else None]
        if address in _NAT64 or address in _IPV4_COMPATIBLE:
            inside.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(v4 is None or v4.is_global for v4 in inside)
    return True


async def check_public(url: str, *, allow_private: bool) -> None:
    """Raise PrivateAddressError if the host resolves to any non-public address."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                              type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise InvalidRequestError("This address cannot be found.", field="url") from None
    for info in infos:
        if not is_public(ipaddress.ip_address(info[4][0])):
            # the message named, or Babel takes "url" for one
            raise PrivateAddressError(PrivateAddressError.message, field="url")
