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
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            # the message named, or Babel takes "url" for one
            raise PrivateAddressError(PrivateAddressError.message, field="url")
