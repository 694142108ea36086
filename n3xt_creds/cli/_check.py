"""``n3xt-creds check``: the doctor. Runs each step, times it, explains each failure.

Steps: settings → source → credentials → token. The token step sends one real token
request through the sans-IO core (no retries, so what N3XT answered is what is shown)
and reports the request_id, the lifetime and when the Authenticator would refresh.
Only fingerprints of secrets and tokens are ever printed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import __version__
from .._core.token import TokenResponse, build_token_request, parse_token_response, transport_error
from ..errors import (
    ConfigError,
    CredentialsNotFoundError,
    InvalidClientError,
    N3XTCredsError,
    SourceError,
    TokenRequestError,
)
from ..settings import build_authenticator, build_source, check_environments
from ..sources.base import describe_source
from ._exit import EXIT_CONFIG, EXIT_OK, exit_code_for
from ._load import load

__all__ = ["Step", "run_check"]


@dataclass
class Step:
    """One diagnosed step: its outcome, timing, what it found, and a hint when it failed."""

    name: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""
    error: str | None = None
    error_type: str | None = None
    hint: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def run_check(args: argparse.Namespace) -> int:
    """Run the doctor for ``args.settings``/``args.env``; print text or ``--json``."""
    if args.all_envs:
        return _run_all_envs(args)
    report: dict[str, Any] = {"version": __version__}
    steps: list[Step] = []
    failure: BaseException | None = None
    state: dict[str, Any] = {}
    for name, action in (
        ("settings", _settings_step),
        ("source", _source_step),
        ("credentials", _credentials_step),
        ("token", _token_step),
        ("shared cache", _shared_cache_step),
    ):
        step = Step(name)
        steps.append(step)
        started = time.perf_counter()
        try:
            action(step, state, args)
            step.ok = True
        except N3XTCredsError as exc:
            failure = exc
            step.error, step.error_type = str(exc), type(exc).__name__
            step.hint = _hint(exc, state)
        finally:
            step.seconds = time.perf_counter() - started
        if failure is not None:
            break
    code = EXIT_OK if failure is None else exit_code_for(failure)
    settings = state.get("settings")
    if settings is not None:
        report.update(
            settings_file=str(settings.path) if settings.path else None,
            settings=settings.where,
            settings_file_reason=settings.path_reason,
            env=settings.env,
            env_reason=settings.env_reason,
            source=settings.source,
            source_origin=settings.origin("source"),
        )
    report.update(
        ok=failure is None,
        exit_code=code,
        steps=[{k: v for k, v in vars(s).items() if v not in (None, {})} for s in steps],
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report, steps)
    return code


def _run_all_envs(args: argparse.Namespace) -> int:
    """Validate every environment of the file, offline; one line per environment."""
    if args.env or args.dynaconf:
        raise ConfigError(
            "--all-envs checks every environment of a settings file: leave out --env and "
            "--dynaconf",
            key="env",
        )
    results = check_environments(args.settings, section=args.section)
    failed = [env for env, error in results if error is not None]
    code = EXIT_CONFIG if failed else EXIT_OK
    if args.json:
        print(
            json.dumps(
                {
                    "version": __version__,
                    "ok": not failed,
                    "exit_code": code,
                    "environments": {
                        env: {"ok": error is None, "error": None if error is None else str(error)}
                        for env, error in results
                    },
                },
                indent=2,
            )
        )
        return code
    print(f"n3xt-creds check --all-envs (n3xt-creds {__version__}; offline: nothing is built)")
    for env, error in results:
        print(f"[{'ok  ' if error is None else 'FAIL'}] {env}")
        if error is not None:
            for line in f"ConfigError: {error}".splitlines():
                print(f"         {line}")
    print("OK" if not failed else f"FAILED: {', '.join(failed)} (exit code {code})")
    return code


def _settings_step(step: Step, state: dict[str, Any], args: argparse.Namespace) -> None:
    settings, state["registry"], _ = load(args)
    state["settings"] = settings
    step.detail = (
        f"{settings.where} ({settings.path_reason}); environment {settings.env!r} "
        f"({settings.env_reason}); token_url {settings.token_url} (from {settings.origin('token_url')})"
    )


def _source_step(step: Step, state: dict[str, Any], args: argparse.Namespace) -> None:
    settings = state["settings"]
    source = build_source(settings, registry=state["registry"])
    state["source"] = source
    # Constructing the Authenticator validates token_url/api_hosts the way the app will.
    build_authenticator(settings, source).close()
    chosen = settings.source if settings.source != "chain" else f"chain {list(settings.chain)}"
    step.detail = f"{chosen} (from {settings.origin('source')}): {describe_source(source)}"


def _credentials_step(step: Step, state: dict[str, Any], args: argparse.Namespace) -> None:
    credentials = state["source"].get_credentials()
    state["credentials"] = credentials
    step.detail = (
        f"client_id {credentials.client_id!r}, client_secret fingerprint "
        f"{credentials.client_secret.fingerprint}"
        + (f", from {credentials.source}" if credentials.source else "")
    )
    step.facts = {
        "client_id": credentials.client_id,
        "secret_fingerprint": credentials.client_secret.fingerprint,
    }


def _token_step(step: Step, state: dict[str, Any], args: argparse.Namespace) -> None:
    settings = state["settings"]
    request = build_token_request(settings.token_url, state["credentials"])
    sent_at = time.monotonic()
    try:
        with httpx.Client(timeout=settings.timeout) as client:
            answer = client.post(request.url, headers=request.headers, content=request.content)
    except httpx.HTTPError as exc:
        raise transport_error(exc, url=settings.token_url) from None
    token = parse_token_response(
        TokenResponse(answer.status_code, answer.headers, answer.content),
        obtained_at=sent_at,
        refresh_margin=settings.refresh_margin,
    )
    refresh_in = max(0.0, token.stale_at - sent_at)
    step.detail = (
        f"HTTP {answer.status_code} from {settings.token_url}, request_id {token.request_id}; "
        f"token fingerprint {token.access_token.fingerprint}, expires in {token.expires_in:g} s, "
        f"refreshed after {refresh_in:g} s"
    )
    step.facts = {
        "request_id": token.request_id,
        "token_fingerprint": token.access_token.fingerprint,
        "expires_in": token.expires_in,
        "refresh_in": round(refresh_in, 3),
    }


def _shared_cache_step(step: Step, state: dict[str, Any], args: argparse.Namespace) -> None:
    """Reachable, lease works, entry present and decryptable, its age: never the token."""
    settings = state["settings"]
    backend = settings.shared_cache["backend"]
    if backend == "none":
        step.detail = "none (each process gets its own token; see docs/shared-cache.md)"
        step.facts = {"backend": "none"}
        return
    from .._core.shared.base import StoreError  # noqa: PLC0415 - only with a shared cache
    from .._core.shared.probe import probe  # noqa: PLC0415
    from ..settings._shared import build_shared_cache  # noqa: PLC0415

    cache: Any = build_shared_cache(
        settings.shared_cache,
        path=str(settings.path),
        env=settings.env,
        origins=settings.origins,
        environ=settings.environ,
    )
    try:
        report = probe(
            cache,
            token_url=settings.token_url,
            credentials=state["credentials"],
            refresh_margin=settings.refresh_margin,
        )
    except StoreError as error:
        raise N3XTCredsError(
            f"shared cache ({cache.describe()}) failed: {error.condition}: {error.detail}. "
            "Calls still work: each process gets its own token until the store is back."
        ) from None
    entry = report.entry
    if entry == "present":
        entry = (
            f"entry present and decryptable (token fingerprint {report.token_fingerprint}, "
            f"{report.age:g} s old, expires in {report.expires_in:g} s)"
        )
    elif entry == "absent":
        entry = "no entry yet (the next process to need a token publishes one)"
    else:
        entry = f"entry unusable ({entry}): ignored, and replaced by the next token"
    step.detail = (
        f"{backend}: {report.where} reachable in {report.seconds * 1000:.1f} ms; "
        f"lease {report.lease}; {entry}"
    )
    step.facts = {
        "backend": backend,
        **{k: v for k, v in report._asdict().items() if v is not None},
    }


def _hint(error: BaseException, state: dict[str, Any]) -> str:
    settings = state.get("settings")
    where = settings.where if settings is not None else "the settings file"
    hints: list[tuple[type[BaseException], Callable[[Any], str]]] = [
        (
            ConfigError,
            lambda e: (
                f"fix `{e.key or 'the named key'}` in {e.path or where} or the variable that sets it; "
                "`n3xt-creds config` shows where every value comes from"
            ),
        ),
        (
            CredentialsNotFoundError,
            lambda e: (
                "provide the credentials at: " + ", ".join(e.looked_for)
                if e.looked_for
                else "provide the credentials where the source looks"
            ),
        ),
        (
            SourceError,
            lambda e: "the secret backend failed; fix it (the message says what), then re-run",
        ),
        (
            InvalidClientError,
            lambda e: (
                "N3XT rejected this client_id/secret pair (rotated or revoked?): update the "
                f"secret where the source reads it; quote request_id {e.request_id} to N3XT support"
            ),
        ),
        (
            TokenRequestError,
            lambda e: (
                f"check token_url in {where} and the network path to it"
                + (f"; quote request_id {e.request_id} to N3XT support" if e.request_id else "")
            ),
        ),
    ]
    for kind, make in hints:
        if isinstance(error, kind):
            return make(error)
    return ""


def _print_text(report: dict[str, Any], steps: list[Step]) -> None:
    print(f"n3xt-creds check (n3xt-creds {report['version']})")
    if "settings_file" in report:
        print(
            f"  settings file: {report['settings_file'] or '(none)'}  ({report['settings_file_reason']})"
        )
        print(f"  environment:   {report['env']}  ({report['env_reason']})")
        print(f"  source:        {report['source']}  (from {report['source_origin']})")
    for step in steps:
        mark = "ok  " if step.ok else "FAIL"
        print(f"[{mark}] {step.name:<12} {step.seconds * 1000:7.1f} ms  {step.detail}")
        if step.error is not None:
            for line in f"{step.error_type}: {step.error}".splitlines():
                print(f"         {line}")
            print(f"         hint: {step.hint}")
    print("OK" if report["ok"] else f"FAILED (exit code {report['exit_code']})")
