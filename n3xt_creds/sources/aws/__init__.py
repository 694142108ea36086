"""AwsSecretsManagerSource: credentials from an AWS Secrets Manager secret.

boto3 is imported the first time the source reads a secret, never at import time,
so ``import n3xt_creds`` stays light for applications that do not use AWS.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, SupportsIndex

from ..._core.arguments import non_empty_str, positive_seconds
from ..._core.retry import RetryPolicy
from ..._text import escape_controls
from ...credentials import Credentials
from ...errors import ConfigError, N3XTCredsError, SourceError
from .._retrying import NO_RETRY_AFTER, call_with_retries, retry_from_options
from ..base import pickle_refusal
from ._errors import translate_error
from ._payload import read_string_field
from ._quiet import quiet_botocore, reading

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import GetSecretValueResponseTypeDef

    from ..options import SourceOptions

__all__ = ["DEFAULT_RETRY", "DEFAULT_SECRET_ID", "AwsSecretsManagerSource", "from_options"]

_log = logging.getLogger("n3xt_creds")

# Sources whose lazily made client must be dropped in a forked child (see _reset_after_fork).
_LIVE: weakref.WeakSet[AwsSecretsManagerSource] = weakref.WeakSet()

#: The retry policy of a source built without one: 3 reads at most, backoff from
#: 0.5 s capped at 5 s, no retry starting later than 15 s after the first read.
DEFAULT_RETRY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=5.0, deadline=15.0)
#: The secret read when none is named (like VaultSource's default path).
DEFAULT_SECRET_ID = "n3xt/api"
_OWNER = "AwsSecretsManagerSource"

_CURRENT = "AWSCURRENT"
# During rotation AWSPENDING holds a secret N3XT may not accept yet (or any more).
_PENDING = "AWSPENDING"


class AwsSecretsManagerSource:
    """Read the client pair from a JSON secret in AWS Secrets Manager.

    The secret's ``SecretString`` is a JSON object such as
    ``{"client_id": "...", "client_secret": "..."}``; ``client_id_key`` and
    ``client_secret_key`` rename the keys. With ``client_secret_id`` the pair is split
    across two secrets: ``secret_id`` holds the id key and ``client_secret_id`` the
    secret key (each secret a JSON object), so they can have different policies.

    The version read is ``version_stage`` (``AWSCURRENT``) or a pinned ``version_id``.
    Reading ``AWSPENDING`` is refused: during rotation it holds a secret that is not
    live yet. Every call reads Secrets Manager again — the authenticator calls it once
    per token refresh, and once more after ``invalid_client`` — so a rotated secret is
    picked up without a restart.

    ``secret_id`` defaults to ``n3xt/api`` (the path VaultSource reads by default).
    The region is ``region_name``, else the session's or AWS configuration's
    (``AWS_DEFAULT_REGION``, ``~/.aws/config``), else ``AWS_REGION`` (which boto3 itself
    ignores outside Lambda), read from ``environ`` (default :data:`os.environ`).
    AWS credentials come from the standard chain (environment, ``profile_name`` or
    ``AWS_PROFILE``, ``~/.aws``, web identity, container or instance role); there is no
    argument for AWS keys. ``endpoint_url`` targets a VPC endpoint, LocalStack or moto.

    Throttling, AWS-side errors, timeouts and connection failures are retried within
    ``retry`` (a :class:`~n3xt_creds.RetryPolicy`, the Authenticator's vocabulary;
    default :data:`DEFAULT_RETRY`); botocore's own retries are off in the client made
    here. The boto3 client is created on first use, once, and reused, with the given
    timeouts. Pass ``session`` (a ``boto3.Session``) or a ready ``client`` to control
    it yourself; an injected client keeps its own timeouts and botocore retries (which
    then multiply with ``retry``). After ``os.fork()`` the child builds its own client
    (an injected one is kept as is). ``clock``, ``sleep`` and ``rng`` are injectable
    for tests. With DEBUG logging on, botocore's records of our reads (they quote the
    response body) are dropped; the application's own AWS calls keep theirs. The
    source refuses to be pickled: its session or client may hold AWS credentials.

    Outcomes: the secret, stage or version missing, or the secret scheduled for
    deletion → :class:`~n3xt_creds.CredentialsNotFoundError`; access denied, KMS
    decryption failure, a malformed value → :class:`~n3xt_creds.SourceError`;
    throttling, AWS-side errors, timeouts and an unreachable endpoint, once botocore's
    retries are spent → :class:`~n3xt_creds.SourceError` with ``retryable=True``.
    """

    def __init__(
        self,
        secret_id: str = DEFAULT_SECRET_ID,
        *,
        region_name: str | None = None,
        profile_name: str | None = None,
        endpoint_url: str | None = None,
        version_stage: str = _CURRENT,
        version_id: str | None = None,
        client_id_key: str = "client_id",
        client_secret_key: str = "client_secret",
        client_secret_id: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        client: SecretsManagerClient | None = None,
        session: Any = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        non_empty_str("secret_id", secret_id, owner=_OWNER)
        for name, value in (
            ("client_secret_id", client_secret_id),
            ("region_name", region_name),
            ("profile_name", profile_name),
            ("version_id", version_id),
        ):
            if value is not None:
                non_empty_str(name, value, owner=_OWNER)
        non_empty_str("client_id_key", client_id_key, owner=_OWNER)
        non_empty_str("client_secret_key", client_secret_key, owner=_OWNER)
        non_empty_str("version_stage", version_stage, owner=_OWNER)
        _check_version(version_stage, version_id, client_secret_id)
        if client_secret_id == secret_id:
            raise ConfigError(
                "client_secret_id is the same secret as secret_id; "
                "leave it unset when one secret holds both keys",
                key="client_secret_id",
                owner="AwsSecretsManagerSource",
            )
        if client_secret_id is None and client_id_key == client_secret_key:
            raise ConfigError(
                f"client_id_key and client_secret_key are both "
                f"{client_id_key!r}; one secret needs two different keys",
                key="client_secret_key",
                owner="AwsSecretsManagerSource",
            )
        if endpoint_url is not None and not (
            isinstance(endpoint_url, str) and endpoint_url.startswith(("https://", "http://"))
        ):
            raise ConfigError(
                "endpoint_url must be an http(s) URL such as "
                f"https://secretsmanager.eu-west-1.amazonaws.com, got {endpoint_url!r}",
                key="endpoint_url",
                owner="AwsSecretsManagerSource",
            )
        if not isinstance(retry, RetryPolicy):
            raise ConfigError(
                f"retry must be a n3xt_creds.RetryPolicy, not {type(retry).__name__}",
                key="retry",
                owner=_OWNER,
            )
        _check_injection(client, session, region_name, profile_name, endpoint_url)

        self.secret_id = secret_id
        self.client_secret_id = client_secret_id
        env = os.environ if environ is None else environ
        if region_name is None and client is None and not env.get("AWS_DEFAULT_REGION"):
            # boto3 reads AWS_DEFAULT_REGION (and ~/.aws/config) but not AWS_REGION, the
            # variable most platforms and docs set; fill in for it, below both.
            fallback = env.get("AWS_REGION", "").strip() or None
            self._fallback_region = fallback
        else:
            self._fallback_region = None
        self.region_name = region_name
        self.profile_name = profile_name
        self.endpoint_url = endpoint_url
        self.version_stage = version_stage
        self.version_id = version_id
        self.client_id_key = client_id_key
        self.client_secret_key = client_secret_key
        self.retry = retry
        self.connect_timeout = positive_seconds("connect_timeout", connect_timeout, owner=_OWNER)
        self.read_timeout = positive_seconds("read_timeout", read_timeout, owner=_OWNER)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._session = session
        self._client: SecretsManagerClient | None = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        _LIVE.add(self)

    # -- description ---------------------------------------------------------------
    def describe(self) -> str:
        """Say which secret, region, version and endpoint this source reads (no secrets)."""
        secrets = repr(self.secret_id)
        if self.client_secret_id:
            secrets += f" + {self.client_secret_id!r}"
        parts = [f"secret {secrets}", f"region {self._region() or '(from AWS config)'}"]
        parts.append(self._version_label())
        endpoint = self.endpoint_url or (self._client.meta.endpoint_url if self._client else None)
        if endpoint:
            parts.append(f"endpoint {endpoint}")
        return "aws (" + ", ".join(parts) + ")"

    def __repr__(self) -> str:
        return (
            f"AwsSecretsManagerSource(secret_id={self.secret_id!r}, "
            f"client_secret_id={self.client_secret_id!r}, region_name={self.region_name!r}, "
            f"version_stage={self.version_stage!r}, version_id={self.version_id!r}, "
            f"endpoint_url={self.endpoint_url!r})"
        )

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise pickle_refusal(self)

    # -- reading -------------------------------------------------------------------
    def get_credentials(self) -> Credentials:
        """Read the secret(s) now; see the class docstring for what each outcome means."""
        # Only the outcome is kept in this frame, never an answer: an error raised here
        # must not have the secret in its traceback's frame locals.
        outcome = self._read_pair()
        if isinstance(outcome, N3XTCredsError):
            raise outcome
        return outcome

    def _read_pair(self) -> Credentials | N3XTCredsError:
        """The credentials or the error to raise; raises nothing from the answers."""
        id_answer = self._get_secret_value(self.secret_id)
        if isinstance(id_answer, N3XTCredsError):
            return id_answer
        client_id = read_string_field(
            id_answer, key=self.client_id_key, where=self._where(self.secret_id)
        )
        if isinstance(client_id, N3XTCredsError):
            return client_id
        secret_answer = (
            id_answer
            if self.client_secret_id is None
            else self._get_secret_value(self.client_secret_id)
        )
        if isinstance(secret_answer, N3XTCredsError):
            return secret_answer
        client_secret = read_string_field(
            secret_answer,
            key=self.client_secret_key,
            where=self._where(self.client_secret_id or self.secret_id),
        )
        if isinstance(client_secret, N3XTCredsError):
            return client_secret
        _log.debug(
            "aws: read %s version %s",
            self.secret_id,
            escape_controls(id_answer.get("VersionId", "?"), 80),
        )
        return Credentials(
            client_id=client_id.get_secret_value(),
            client_secret=client_secret,
            source=f"aws:{self.secret_id}",
        )

    def _get_secret_value(self, secret_id: str) -> GetSecretValueResponseTypeDef | N3XTCredsError:
        """One GetSecretValue within the retry policy, or the error that ended it."""
        failure: Exception | None = None
        try:
            client = self._get_client()
            return call_with_retries(
                lambda: self._call(client, secret_id),
                policy=self.retry,
                classify=lambda exc: self._classify(exc, secret_id),
                give_up=lambda exc, attempts: self._translate(exc, secret_id, attempts),
                clock=self._clock,
                sleep=self._sleep,
                rng=self._rng,
                label="aws",
            )
        except N3XTCredsError as exc:
            failure = exc.with_traceback(None)
        except Exception as exc:
            # A final failure from boto3/botocore: its message may quote the response,
            # and its frames hold the request; only our translation leaves this frame.
            failure = self._translate(exc.with_traceback(None), secret_id, 1)
        assert isinstance(failure, N3XTCredsError)
        failure.__context__ = None
        return failure

    def _call(self, client: SecretsManagerClient, secret_id: str) -> GetSecretValueResponseTypeDef:
        with reading():
            if self.version_id is not None:
                return client.get_secret_value(SecretId=secret_id, VersionId=self.version_id)
            return client.get_secret_value(SecretId=secret_id, VersionStage=self.version_stage)

    def _translate(self, exc: Exception, secret_id: str, attempts: int) -> N3XTCredsError:
        if isinstance(exc, N3XTCredsError):
            return exc
        return translate_error(
            exc,
            where=self._where(secret_id),
            secret_id=secret_id,
            looked_for=self._looked_for(),
            attempts=attempts,
        )

    def _classify(self, exc: Exception, secret_id: str) -> float | None:
        retryable = getattr(self._translate(exc, secret_id, 1), "retryable", False)
        return NO_RETRY_AFTER if retryable else None

    def _get_client(self) -> SecretsManagerClient:
        client = self._client
        if client is not None:
            return client
        with self._client_lock:  # one client per source, even when threads race here
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> SecretsManagerClient:
        try:
            import boto3  # noqa: PLC0415 - heavy import, only when an AWS source is used
            from botocore.config import Config  # noqa: PLC0415
        except ImportError:
            raise SourceError(
                "aws: boto3 is not installed; install the AWS extra: pip install 'n3xt-creds[aws]'",
                source="aws",
            ) from None

        session = self._session or boto3.session.Session(profile_name=self.profile_name)
        quiet_botocore()
        config = Config(
            # One attempt per call: the retry policy (the core's vocabulary) runs above.
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            user_agent_extra="n3xt-creds",
        )
        client: SecretsManagerClient = session.client(
            "secretsmanager",
            region_name=self.region_name or self._default_region(session),
            endpoint_url=self.endpoint_url,
            config=config,
        )
        return client

    def _default_region(self, session: Any) -> str | None:
        """AWS_REGION, when neither the arguments, the session nor AWS config name one."""
        if self._fallback_region is None or session.region_name:
            return None
        return self._fallback_region

    def _reset_after_fork(self) -> None:
        # In a forked child only the forking thread exists: a lock another thread held
        # would never be released, and the parent's pooled connections must not be
        # shared. A client we made is rebuilt on next use; an injected one is its
        # owner's to replace.
        self._client_lock = threading.Lock()
        if self._owns_client:
            self._client = None

    # -- message helpers -----------------------------------------------------------
    def _region(self) -> str | None:
        if self._client is not None:
            return self._client.meta.region_name
        return self.region_name or self._fallback_region

    def _version_label(self) -> str:
        if self.version_id is not None:
            return f"version {self.version_id}"
        return f"stage {self.version_stage}"

    def _where(self, secret_id: str) -> str:
        region = self._region() or "from AWS config"
        return f"aws: secret {secret_id!r} ({self._version_label()}, region {region})"

    def _looked_for(self) -> tuple[str, ...]:
        ids = [self.secret_id] + ([self.client_secret_id] if self.client_secret_id else [])
        return tuple(f"aws secret {i} ({self._version_label()})" for i in ids)


def _reset_all_after_fork() -> None:
    for source in list(_LIVE):
        source._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)


def from_options(options: SourceOptions) -> AwsSecretsManagerSource:
    """Build the source from its ``[<env>.sources.aws]`` settings table.

    Keys: ``secret_id`` (default ``n3xt/api``), ``client_secret_id``, ``region_name``
    (default: AWS configuration, then ``AWS_REGION``), ``profile_name``,
    ``endpoint_url``, ``version_stage``, ``version_id``, ``client_id_key``,
    ``client_secret_key``, ``connect_timeout`` (3 s), ``read_timeout`` (5 s), and the
    retry policy ``max_attempts`` (3), ``base_delay`` (0.5 s), ``max_delay`` (5 s),
    ``deadline`` (15 s). AWS keys (``aws_access_key_id``, ...) are refused: they belong
    to the standard AWS credential chain, not to a settings file.
    """
    for aws_key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        options.not_secret(aws_key)
    kwargs: dict[str, Any] = {
        "secret_id": options.get_str("secret_id", DEFAULT_SECRET_ID),
        "client_secret_id": options.get_str("client_secret_id", None),
        "region_name": options.get_str("region_name", None),
        "profile_name": options.get_str("profile_name", None),
        "endpoint_url": options.get_str("endpoint_url", None),
        "version_stage": options.get_str("version_stage", _CURRENT),
        "version_id": options.get_str("version_id", None),
        "client_id_key": options.get_str("client_id_key", "client_id"),
        "client_secret_key": options.get_str("client_secret_key", "client_secret"),
        "connect_timeout": options.get_float("connect_timeout", 3.0, positive=True),
        "read_timeout": options.get_float("read_timeout", 5.0, positive=True),
        "retry": retry_from_options(options, DEFAULT_RETRY),
    }
    options.finish()
    return options.build(AwsSecretsManagerSource, environ=options.environ, **kwargs)


def _check_version(
    version_stage: str, version_id: str | None, client_secret_id: str | None
) -> None:
    if version_stage == _PENDING:
        raise ConfigError(
            "version_stage AWSPENDING is refused: during rotation it "
            "holds a secret N3XT does not accept yet. Read AWSCURRENT (the default), or pin "
            "a version_id",
            key="version_stage",
            owner="AwsSecretsManagerSource",
        )
    if version_id is not None and version_stage != _CURRENT:
        raise ConfigError(
            "set version_stage or version_id, not both",
            key="version_id",
            owner="AwsSecretsManagerSource",
        )
    if version_id is not None and client_secret_id is not None:
        raise ConfigError(
            "version_id names a version of one secret and cannot "
            "apply to two (secret_id and client_secret_id); use version_stage",
            key="version_id",
            owner="AwsSecretsManagerSource",
        )


def _check_injection(
    client: object, session: object, region: object, profile: object, endpoint: object
) -> None:
    if client is not None:
        clash = [
            name
            for name, value in (
                ("session", session),
                ("region_name", region),
                ("profile_name", profile),
                ("endpoint_url", endpoint),
            )
            if value is not None
        ]
        if clash:
            raise ConfigError(
                f"an injected client already has its {clash[0]}; "
                f"pass {', '.join(clash)} when creating the client, not here",
                key=clash[0],
                owner="AwsSecretsManagerSource",
            )
    if session is not None and profile is not None:
        raise ConfigError(
            "an injected session already has its profile; "
            "pass profile_name to boto3.Session, not here",
            key="profile_name",
            owner="AwsSecretsManagerSource",
        )
