"""``requests`` support: :class:`RequestsAuth`, a ``requests.auth.AuthBase``.

An :class:`~n3xt_creds.Authenticator` already speaks requests' auth protocol
(``session.auth = authenticator``); this class is the same thing as a real
``requests.auth.AuthBase``, for code that checks for one. Importing this module imports
``requests``; ``import n3xt_creds`` does not.
"""

from __future__ import annotations

import requests
import requests.auth

from ..authenticator import Authenticator

__all__ = ["RequestsAuth"]


class RequestsAuth(requests.auth.AuthBase):
    """Authenticate ``requests`` calls with an :class:`~n3xt_creds.Authenticator`.

    ::

        session = requests.Session()
        session.auth = RequestsAuth(authenticator)   # or simply: session.auth = authenticator

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
        prepared: requests.PreparedRequest = self.authenticator(request)
        return prepared

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestsAuth) and other.authenticator is self.authenticator

    def __hash__(self) -> int:
        return hash((RequestsAuth, id(self.authenticator)))

    def __repr__(self) -> str:
        return f"RequestsAuth({self.authenticator!r})"
