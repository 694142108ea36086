"""Adapters that put the N3XT token on requests of HTTP clients other than httpx.

httpx needs no adapter: :class:`~n3xt_creds.Authenticator` *is* an ``httpx.Auth``.
For ``requests``, use :class:`n3xt_creds.adapters.requests.RequestsAuth` (importing
that module imports ``requests``; this package does not). For anything else
(aiohttp, urllib3, grpc metadata...), use ``Authenticator.headers()`` /
``await Authenticator.aheaders()`` and send them only to N3XT hosts.
"""

from __future__ import annotations

__all__: list[str] = []
