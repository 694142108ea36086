"""What the emulated token endpoint answers: N3XT's success and error bodies, and faults.

Pure functions from a request (and the emulator state) to an :class:`Answer`; the HTTP
handler only sends them. Every JSON body carries ``status_code`` and ``request_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from ._faults import Fault
from ._state import EmulatorState

__all__ = ["Answer", "error_answer", "error_body", "fault_answer", "grant_answer"]

# Declares itself JSON, is not: the trap a careless client falls into.
GARBAGE = b"\x89<!-- definitely not JSON -->\x00{status_code: 200"
# What a load balancer in front of N3XT sends when N3XT is down.
BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Answer:
    """A decided answer: the outcome to count and what to send."""

    outcome: str
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


def error_body(request_id: str, status: int, error: str, description: str) -> bytes:
    """N3XT's JSON error body."""
    body = {
        "status_code": status,
        "request_id": request_id,
        "error": error,
        "error_description": description,
    }
    return json.dumps(body).encode()


def error_answer(
    request_id: str,
    outcome: str,
    status: int,
    error: str,
    description: str,
    *,
    headers: dict[str, str] | None = None,
) -> Answer:
    """An error answer counted as ``outcome``."""
    return Answer(
        outcome, status, error_body(request_id, status, error, description), headers=headers
    )


def grant_answer(
    request_id: str, method: str, content_type: str, body: bytes, state: EmulatorState
) -> Answer:
    """Validate a client-credentials request against ``state`` and decide the answer."""
    if method != "POST":
        return error_answer(
            request_id,
            "method_not_allowed",
            405,
            "invalid_request",
            "use POST",
            headers={"Allow": "POST"},
        )
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return error_answer(
            request_id,
            "unsupported_media_type",
            415,
            "invalid_request",
            "Content-Type must be application/json",
        )
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return error_answer(
            request_id, "invalid_request", 400, "invalid_request", "the body must be a JSON object"
        )
    grant_type = payload.get("grant_type")
    if grant_type is not None and grant_type != "client_credentials":
        return error_answer(
            request_id,
            "unsupported_grant_type",
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        )
    missing = [
        name
        for name in ("client_id", "client_secret", "grant_type")
        if not isinstance(payload.get(name), str) or not payload[name]
    ]
    if missing:
        return error_answer(
            request_id,
            "invalid_request",
            400,
            "invalid_request",
            f"missing or empty field(s): {', '.join(missing)}",
        )
    client_id = cast(str, payload["client_id"])
    if not state.authenticate(client_id, cast(str, payload["client_secret"])):
        return error_answer(
            request_id, "invalid_client", 401, "invalid_client", "client authentication failed"
        )
    token, expires_in = state.issue_token(client_id)
    success = {
        "status_code": 200,
        "expires_in": expires_in,
        "request_id": request_id,
        "access_token": token,
        "token_type": "bearer",
    }
    return Answer("success", 200, json.dumps(success).encode())


def fault_answer(request_id: str, fault: Fault, retry_after: int) -> Answer:
    """The answer of a fault that does answer (every one but HANG and RESET)."""
    outcome = fault.value
    if fault is Fault.SERVER_ERROR:
        return error_answer(
            request_id, outcome, 500, "server_error", "internal server error (injected)"
        )
    if fault is Fault.BAD_GATEWAY_HTML:
        return Answer(outcome, 502, BAD_GATEWAY_PAGE, "text/html")
    if fault is Fault.UNAVAILABLE:
        return error_answer(
            request_id, outcome, 503, "temporarily_unavailable", "try again later (injected)"
        )
    if fault is Fault.RATE_LIMITED:
        return error_answer(
            request_id,
            outcome,
            429,
            "rate_limited",
            "too many requests (injected)",
            headers={"Retry-After": str(retry_after)},
        )
    if fault is Fault.GARBAGE_200:
        return Answer(outcome, 200, GARBAGE)
    if fault is not Fault.STATUS_500_IN_BODY:
        raise ValueError(f"{fault} sends no answer; the handler acts it out")
    # N3XT sometimes reports a failure inside a 200.
    body = error_body(request_id, 500, "server_error", "internal server error (injected)")
    return Answer(outcome, 200, body)
