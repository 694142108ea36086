"""``requests`` support: :class:`RequestsAuth`, a ``requests.auth.AuthBase``.

Importing this module imports ``requests``; ``import n3xt_creds`` does not.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import requests.auth

from .._core.stats import AuthEvent
from ..authenticator import Authenticator

__all__ = ["RequestsAuth"]

logger = logging.getLogger("n3xt_creds")

# Set on a PreparedRequest we re-sent after a 401, so it is never replayed twice.
_REPLAYED = "_n3xt_creds_replayed"


class RequestsAuth(requests.auth.AuthBase):
    """Authenticate ``requests`` calls with an :class:`~n3xt_creds.Authenticator`.

    ::

        session = requests.Session()
        session.auth = RequestsAuth(authenticator)

    The token goes only to URLs the authenticator's ``api_hosts`` allow (others pass
    through untouched, with a one-time warning per host). When the API answers 401
    to a request that carried our token, the token is dropped (if still current), a
    new one is fetched and the request is replayed once — unless its body was a
    stream or file, which cannot be sent twice. On a redirect to another host,
    ``requests`` itself strips the ``Authorization`` header and this auth is not
    re-applied, so the token never follows a redirect off its origin.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        if not isinstance(authenticator, Authenticator):
            raise TypeError(
                f"RequestsAuth wraps an n3xt_creds.Authenticator, not {type(authenticator).__name__}"
            )
        self.authenticator = authenticator

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Attach the token (allowed hosts only) and the 401 replay hook."""
        if not self.authenticator._allows_url(request.url or ""):
            return request
        request.headers["Authorization"] = self.authenticator._current_sync().header
        request.register_hook("response", self._replay_on_401)  # type: ignore[no-untyped-call]
        return request

    def _replay_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or getattr(request, _REPLAYED, False):
            return response
        sent = request.headers.get("Authorization")
        if sent is None:  # a redirect answered this one: it never carried our token
            return response
        self.authenticator._api_rejected(sent)
        if request.body is not None and not isinstance(request.body, bytes | str):
            logger.info("API answered 401; not replaying: the request body was a stream")
            return response
        fresh = self.authenticator._current_sync().header
        # Free the connection before sending again (as requests' own digest auth does).
        _ = response.content
        response.close()
        replay = request.copy()
        replay.headers["Authorization"] = fresh
        setattr(replay, _REPLAYED, True)
        self.authenticator._stats.record(AuthEvent("request_replayed"))
        if response.connection is None:  # pragma: no cover - requests always sets it
            return response
        second: requests.Response = response.connection.send(replay, **kwargs)
        second.history.append(response)
        second.request = replay
        return second

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestsAuth) and other.authenticator is self.authenticator

    def __hash__(self) -> int:
        return hash((RequestsAuth, id(self.authenticator)))

    def __repr__(self) -> str:
        return f"RequestsAuth({self.authenticator!r})"
