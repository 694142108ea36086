"""The token refresh protocol, written once as a generator and driven by sync and async code.

:func:`refresh_flow` decides *what* to do — read the credentials, send the token
request, wait — by yielding an action; a driver does it and sends the result back
(or throws the exception the action raised). This is the httpx ``auth_flow`` /
stamina shape: retries, backoff with jitter, ``Retry-After``, the deadline, the
``invalid_client`` re-read and the last-good fallback live here, once, and the sync
and async drivers only differ in how they send, sleep and lock.

:func:`run_sync` and :func:`run_async` are those drivers' loops, given callables;
they are the only sync/async twins in the package.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Generator
from typing import NamedTuple

import httpx

from .._text import escape_controls
from ..credentials import Credentials
from ..errors import CredentialsNotFoundError, InvalidClientError, SourceError, TokenRequestError
from .logfields import fields
from .retry import RetryPolicy, backoff_delay, request_id_note
from .token import (
    Token,
    TokenRequest,
    TokenResponse,
    build_token_request,
    display_url,
    parse_token_response,
    transport_error,
)

__all__ = [
    "Action",
    "CredentialsUnchanged",
    "ReadCredentials",
    "RefreshFlow",
    "RefreshResult",
    "RetryPolicy",
    "SendTokenRequest",
    "Sleep",
    "refresh_flow",
    "run_async",
    "run_sync",
]

logger = logging.getLogger("n3xt_creds")

# Failures to get any answer that the flow turns into a retryable TokenRequestError.
# Anything else a driver throws in propagates unchanged (it is a bug, or a cancellation).
_TRANSPORT_ERRORS = (httpx.TransportError, OSError)
# client_id and source names come from outside: escaped and cut before any log or message.
_ID_LIMIT = 200


class ReadCredentials(NamedTuple):
    """Driver: call ``source.get_credentials()`` and send back the Credentials.

    ``reason`` is ``"refresh"`` normally and ``"invalid_client"`` when N3XT rejected
    the last pair: the driver must then bypass any cache it keeps in front of the source.
    """

    reason: str


class SendTokenRequest(NamedTuple):
    """Driver: POST ``request`` and send back a :class:`~n3xt_creds._core.token.TokenResponse`.

    ``time_left`` is what remains of the refresh deadline: a driver may cap its
    per-request timeout to it. Throw transport failures (``httpx.TransportError``,
    ``OSError``) into the flow as they are, from outside any ``except`` block (as
    :func:`run_sync` does), so the flow's own errors never get the transport
    exception, whose request holds the secret, as their ``__context__``.
    """

    request: TokenRequest
    time_left: float | None = None


class Sleep(NamedTuple):
    """Driver: wait ``seconds`` (``time.sleep`` / ``asyncio.sleep``), then send back ``None``."""

    seconds: float


class RefreshResult(NamedTuple):
    """A successful refresh.

    ``credentials`` got the token (they are the new last-good pair); ``attempts``
    counts the token requests sent and ``elapsed`` the seconds taken, on the flow's clock.
    """

    token: Token
    credentials: Credentials
    attempts: int = 1
    elapsed: float = 0.0


Action = ReadCredentials | SendTokenRequest | Sleep
RefreshFlow = Generator[Action, object, RefreshResult]


class CredentialsUnchanged(Exception):
    """Raised by a flow with ``only_if_changed``: the source still serves the pair that
    failed (or cannot be read), so no token request was sent. Not an error for callers."""


def refresh_flow(
    *,
    token_url: str,
    refresh_margin: float,
    policy: RetryPolicy,
    last_good: Credentials | None,
    clock: Callable[[], float],
    rng: random.Random | None = None,
    reason: str = "refresh",
    trigger: str | None = None,
    refresh_jitter: float = 0.0,
    only_if_changed: bool = False,
    rejected: Credentials | None = None,
) -> RefreshFlow:
    """Get a new token: read credentials, request, retry transient failures, return it.

    * The source is read first (``ReadCredentials(reason)``). If it raises
      SourceError or CredentialsNotFoundError and ``last_good`` is given, a warning
      is logged and ``last_good`` is used; otherwise the error propagates.
    * Transient failures (no answer, 408/429/5xx, a 2xx that is not a token) are
      retried after ``Sleep``\\ s of exponential backoff with full jitter, or exactly
      ``Retry-After``, within ``policy.max_attempts`` and ``policy.deadline`` (on
      ``clock``). A Retry-After beyond the deadline ends the refresh at once.
    * ``invalid_client``: the source is re-read once (``ReadCredentials("invalid_client")``).
      A different pair is tried once (this extra request does not count against
      ``max_attempts``); the same pair, or a second rejection, raises InvalidClientError.
    * Final failures raise their TokenRequestError at once.
    * ``only_if_changed`` (a failure memory's check): when the source still serves
      ``rejected`` (or fails, so ``last_good`` would be used), raise
      :class:`CredentialsUnchanged` without sending anything.
    * The token's stale point moves early by a random fraction of its lifetime, up to
      ``refresh_jitter`` (see :func:`~n3xt_creds._core.token.token_windows`).
    * A token whose lifetime is shorter than the round trip that got it is returned
      all the same, with a warning: the callers waiting for it get it.
    * ``trigger`` (why the refresh runs: ``cold``, ``stale``...) goes into the
      structured fields of its log records (:mod:`~n3xt_creds._core.logfields`).
    """
    rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
    started = clock()
    deadline_at = started + policy.deadline
    logger.debug(
        "Token refresh started (reason=%s, token_url=%s)",
        reason,
        display_url(token_url),
        extra=fields("refresh_started", trigger=trigger),
    )

    credentials = yield from (
        _read_if_changed(rejected) if only_if_changed else _read_source(reason, last_good, trigger)
    )
    attempt = 0  # token requests that count against max_attempts
    requests_sent = 0
    reread_done = False
    while True:
        attempt += 1
        requests_sent += 1
        sent_at = clock()
        request = build_token_request(token_url, credentials)
        error: TokenRequestError
        try:
            response = yield SendTokenRequest(request, time_left=max(0.0, deadline_at - sent_at))
        except _TRANSPORT_ERRORS as exc:
            error = transport_error(exc, url=token_url)
        else:
            if not isinstance(response, TokenResponse):
                raise TypeError(f"driver sent {type(response).__name__}, expected TokenResponse")
            try:
                token = parse_token_response(
                    response,
                    obtained_at=sent_at,
                    refresh_margin=refresh_margin,
                    stale_jitter=rng.uniform(0.0, refresh_jitter) if refresh_jitter else 0.0,
                )
            except TokenRequestError as exc:
                error = exc
            else:
                elapsed = clock() - started
                _warn_if_expired_on_arrival(token, clock() - sent_at)
                logger.info(
                    "Token refresh succeeded in %.3f s (attempts=%d, expires_in=%g s, "
                    "request_id=%s, client_id=%s, secret fingerprint=%s, source=%s)",
                    elapsed,
                    requests_sent,
                    token.expires_in,
                    token.request_id,
                    escape_controls(credentials.client_id, _ID_LIMIT),
                    credentials.client_secret.fingerprint,
                    escape_controls(credentials.source or "?", _ID_LIMIT),
                    extra=fields(
                        "refresh_succeeded",
                        trigger=trigger,
                        duration=elapsed,
                        request_id=token.request_id,
                        result="success",
                    ),
                )
                return RefreshResult(token, credentials, requests_sent, elapsed)

        if isinstance(error, InvalidClientError) and not reread_done:
            reread_done = True
            attempt -= 1  # a rotated pair deserves its own try
            reread = yield from _reread_after_rejection(error, credentials)
            if isinstance(reread, InvalidClientError):
                raise _failed(reread, requests_sent, started, clock, trigger) from None
            credentials = reread
            continue
        if isinstance(error, InvalidClientError):
            raise _failed(
                _still_rejected(error, credentials), requests_sent, started, clock, trigger
            ) from None
        if not error.retryable:
            raise _failed(error, requests_sent, started, clock, trigger) from None
        delay = _next_delay(error, attempt, policy, rng, now=clock(), deadline_at=deadline_at)
        if delay is None:
            gave_up = _gave_up(error, requests_sent, clock() - started, policy)
            raise _failed(gave_up, requests_sent, started, clock, trigger) from None
        logger.warning(
            "Token request attempt %d failed (status=%s, request_id=%s, retryable=True, "
            "next retry in %.3f s, client_id=%s): %s",
            requests_sent,
            error.status_code,
            error.request_id,
            delay,
            escape_controls(credentials.client_id, _ID_LIMIT),
            error,
            extra=fields(
                "token_request_retry",
                trigger=trigger,
                duration=clock() - sent_at,
                request_id=error.request_id,
                result="transient",
            ),
        )
        yield Sleep(delay)


def _warn_if_expired_on_arrival(token: Token, round_trip: float) -> None:
    if round_trip >= token.expires_in:
        logger.warning(
            "The token arrived already expired: expires_in=%g s, but the round trip took "
            "%.3f s (request_id=%s). It is handed to the callers that waited for it, and "
            "the next call requests another; check the latency to the token endpoint and "
            "the expires_in N3XT sends",
            token.expires_in,
            round_trip,
            token.request_id,
            extra=fields(
                "token_expired_on_arrival", duration=round_trip, request_id=token.request_id
            ),
        )


def _read_source(
    reason: str, last_good: Credentials | None, trigger: str | None
) -> Generator[Action, object, Credentials]:
    try:
        credentials = yield ReadCredentials(reason)
    except (SourceError, CredentialsNotFoundError) as exc:
        if last_good is None:
            logger.error(
                "Token refresh failed: the credential source failed (%s: %s) and there are "
                "no last good credentials to fall back on",
                type(exc).__name__,
                escape_controls(exc),
                extra=fields("source_failed", trigger=trigger, result="error"),
            )
            raise
        # Only our own message types reach the log: they are written never to hold a secret.
        logger.warning(
            "Credential source failed (%s: %s); using the last good credentials "
            "(client_id=%s, secret fingerprint=%s) so a secret-store outage does not "
            "become an N3XT outage",
            type(exc).__name__,
            escape_controls(exc),
            escape_controls(last_good.client_id, _ID_LIMIT),
            last_good.client_secret.fingerprint,
            extra=fields("last_good_credentials", trigger=trigger, result="last_good"),
        )
        return last_good
    return _checked(credentials)


def _read_if_changed(rejected: Credentials | None) -> Generator[Action, object, Credentials]:
    """A cool-down check: the source's pair if it differs from ``rejected``."""
    try:
        credentials = _checked((yield ReadCredentials("cooldown_check")))
    except (SourceError, CredentialsNotFoundError):
        raise CredentialsUnchanged from None
    if rejected is not None and (
        credentials.client_id == rejected.client_id
        and credentials.client_secret == rejected.client_secret
    ):
        raise CredentialsUnchanged
    logger.info(
        "The credential source now serves client_id=%s (secret fingerprint=%s), not the "
        "pair that failed: trying it before the cool-down ends",
        credentials.client_id,
        credentials.client_secret.fingerprint,
        extra=fields("credentials_changed", trigger="rotation", result="changed"),
    )
    return credentials


def _reread_after_rejection(
    error: InvalidClientError, rejected: Credentials
) -> Generator[Action, object, Credentials | InvalidClientError]:
    """Re-read the source once: a new pair to try, or the error that ends the refresh."""
    logger.warning(
        "N3XT rejected client_id=%s (secret fingerprint=%s)%s; re-reading the credential "
        "source once in case they were rotated",
        escape_controls(rejected.client_id, _ID_LIMIT),
        rejected.client_secret.fingerprint,
        request_id_note(error.request_id),
        extra=fields("invalid_client_reread", request_id=error.request_id, result="invalid_client"),
    )
    try:
        fresh = _checked((yield ReadCredentials("invalid_client")))
    except (SourceError, CredentialsNotFoundError) as exc:
        failure = InvalidClientError(
            f"{error} Re-reading the credential source to pick up rotated credentials "
            f"failed too ({type(exc).__name__}: {escape_controls(exc)}).",
            status_code=error.status_code,
            request_id=error.request_id,
        )
    else:
        if fresh.client_id != rejected.client_id or fresh.client_secret != rejected.client_secret:
            logger.info(
                "The source now serves client_id=%s (secret fingerprint=%s); retrying once",
                escape_controls(fresh.client_id, _ID_LIMIT),
                fresh.client_secret.fingerprint,
                extra=fields("credentials_rotated", result="changed"),
            )
            return fresh
        return _still_rejected(error, rejected)
    return failure


def _still_rejected(error: TokenRequestError, rejected: Credentials) -> InvalidClientError:
    where = f" from {escape_controls(rejected.source, _ID_LIMIT)}" if rejected.source else ""
    return InvalidClientError(
        f"N3XT rejects the credentials the source still serves after one re-read: "
        f"client_id={escape_controls(rejected.client_id, _ID_LIMIT)}, secret fingerprint {rejected.client_secret.fingerprint}"
        f"{where} (HTTP {error.status_code}){request_id_note(error.request_id)}. Update the "
        "client secret where the source reads it (or the client_id, if the client was deleted).",
        status_code=error.status_code,
        request_id=error.request_id,
    )


def _next_delay(
    error: TokenRequestError,
    failures: int,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    now: float,
    deadline_at: float,
) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` to give up now.

    A retry is scheduled only if it starts before the deadline. The check is
    ``now + delay < deadline_at`` — the same sum a clock advanced by ``delay`` gives —
    rather than ``delay < deadline_at - now``, which rounding can make disagree.
    """
    if failures >= policy.max_attempts:
        return None
    if error.retry_after is not None:
        # The server said when; a retry before then would be refused anyway.
        delay = error.retry_after
    else:
        delay = backoff_delay(policy, failures, rng)
    return delay if now + delay < deadline_at else None


def _gave_up(
    error: TokenRequestError, requests_sent: int, elapsed: float, policy: RetryPolicy
) -> TokenRequestError:
    if requests_sent >= policy.max_attempts:
        why = f"all {policy.max_attempts} attempts failed"
    elif error.retry_after is not None:
        why = (
            f"the endpoint asked to wait {error.retry_after:g} s (Retry-After), past the "
            f"{policy.deadline:g} s refresh deadline"
        )
    else:
        why = f"the {policy.deadline:g} s refresh deadline was reached"
    return TokenRequestError(
        f"{error} Gave up after {requests_sent} token request(s) in {elapsed:.1f} s: {why}.",
        status_code=error.status_code,
        request_id=error.request_id,
        retryable=True,
        retry_after=error.retry_after,
    )


def _failed(
    error: TokenRequestError,
    requests_sent: int,
    started: float,
    clock: Callable[[], float],
    trigger: str | None,
) -> TokenRequestError:
    """Log the end of a failed refresh (one ERROR line) and return ``error`` to raise."""
    logger.error(
        "Token refresh failed after %d token request(s) in %.3f s (status=%s, request_id=%s, "
        "retryable=%s): %s",
        requests_sent,
        clock() - started,
        error.status_code,
        error.request_id,
        error.retryable,
        error,
        extra=fields(
            "refresh_failed",
            trigger=trigger,
            duration=clock() - started,
            request_id=error.request_id,
            result=_result_of(error),
        ),
    )
    return error


def _result_of(error: TokenRequestError) -> str:
    """A failed refresh's ``result`` log field, in the token-request metric's words."""
    if isinstance(error, InvalidClientError):
        return "invalid_client"
    return "transient" if error.retryable else "rejected"


def _checked(credentials: object) -> Credentials:
    if not isinstance(credentials, Credentials):
        raise TypeError(f"driver sent {type(credentials).__name__}, expected Credentials")
    return credentials


def run_sync(
    flow: RefreshFlow,
    *,
    read: Callable[[ReadCredentials], Credentials],
    send: Callable[[SendTokenRequest], TokenResponse],
    sleep: Callable[[float], object],
) -> RefreshResult:
    """Drive ``flow`` to completion with blocking callables; return its result or raise."""
    try:
        action = next(flow)
        while True:
            failure: Exception | None = None
            try:
                if isinstance(action, ReadCredentials):
                    result: object = read(action)
                elif isinstance(action, SendTokenRequest):
                    result = send(action)
                else:
                    result = sleep(action.seconds)
            except Exception as exc:
                failure = exc
            # Thrown outside the except block, so whatever the flow raises in turn does
            # not get the driver's exception (which may hold the request) as __context__.
            action = flow.send(result) if failure is None else flow.throw(failure)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def run_async(
    flow: RefreshFlow,
    *,
    read: Callable[[ReadCredentials], Awaitable[Credentials]],
    send: Callable[[SendTokenRequest], Awaitable[TokenResponse]],
    sleep: Callable[[float], Awaitable[object]],
) -> RefreshResult:
    """Drive ``flow`` to completion with async callables; return its result or raise.

    Cancellation (a BaseException) is not thrown into the flow: it propagates and the
    flow is closed.
    """
    try:
        action = next(flow)
        while True:
            failure: Exception | None = None
            try:
                if isinstance(action, ReadCredentials):
                    result: object = await read(action)
                elif isinstance(action, SendTokenRequest):
                    result = await send(action)
                else:
                    result = await sleep(action.seconds)
            except Exception as exc:
                failure = exc
            # Thrown outside the except block, so whatever the flow raises in turn does
            # not get the driver's exception (which may hold the request) as __context__.
            action = flow.send(result) if failure is None else flow.throw(failure)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()
