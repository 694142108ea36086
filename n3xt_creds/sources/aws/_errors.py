"""Turn what boto3 raises around GetSecretValue into n3xt_creds errors with a next step.

One function, :func:`translate_error`, maps every failure to one of two outcomes the
credential-source protocol knows:

* :class:`~n3xt_creds.CredentialsNotFoundError` — the secret (or the requested
  stage/version) is not there, or is scheduled for deletion: "nothing here";
* :class:`~n3xt_creds.SourceError` — everything else, with ``retryable=True`` only
  for failures that waiting can fix (throttling, AWS-side errors, timeouts, an
  unreachable endpoint): the source's retry policy retries exactly those.

Messages never quote AWS's or botocore's own text: a response-parsing error can carry
the raw answer (which may be the secret), so only error codes, HTTP status, request
ids, endpoints and our own words appear (escaped: they come from outside), and
callers raise the result outside any ``except`` block, so no context chain leads back.
"""

from __future__ import annotations

from typing import Any

from ..._text import escape_controls
from ...errors import CredentialsNotFoundError, N3XTCredsError, SourceError

__all__ = ["translate_error"]

_NOT_FOUND = frozenset({"ResourceNotFoundException"})
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})
_BAD_AWS_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
_DECRYPTION = frozenset({"DecryptionFailure"})
# Codes botocore's standard retry mode treats as transient, plus Secrets Manager's own.
_TRANSIENT = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def translate_error(
    exc: BaseException,
    *,
    where: str,
    secret_id: str,
    looked_for: tuple[str, ...],
    attempts: int = 1,
) -> N3XTCredsError:
    """The n3xt_creds error for ``exc``, raised by a GetSecretValue call.

    ``where`` names the secret, stage/version and region for messages; ``looked_for``
    goes on a :class:`~n3xt_creds.CredentialsNotFoundError` so a chain can list it;
    ``attempts`` is how many calls were made (for the message of a transient failure).
    """
    # botocore is loaded by now: the call that failed went through it.
    from botocore import exceptions as boto  # noqa: PLC0415 - heavy import, only when used

    if isinstance(exc, boto.ClientError):
        return _from_client_error(
            exc, where=where, secret_id=secret_id, looked_for=looked_for, attempts=attempts
        )
    if isinstance(exc, boto.SSLError):
        return SourceError(
            f"{where}: TLS verification of {_endpoint(exc)} failed; if a proxy or VPC "
            "endpoint uses a private CA, point AWS_CA_BUNDLE at its certificate",
            source="aws",
        )
    if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
        kind = (
            "timed out"
            if isinstance(exc, (boto.ReadTimeoutError, boto.ConnectTimeoutError))
            else "failed"
        )
        return SourceError(
            f"{where}: the connection to {_endpoint(exc)} {kind} ({type(exc).__name__}) "
            f"after {attempts} attempt(s); check network access to Secrets Manager "
            "(VPC endpoint, proxy, security groups) or the endpoint_url setting",
            source="aws",
            retryable=True,
        )
    if isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return SourceError(
            f"{where}: no usable AWS credentials were found ({type(exc).__name__}). The "
            "standard AWS chain was searched: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or profile_name, ~/.aws, web identity, container and instance roles. "
            "Give this process a role or profile; never put AWS keys in n3xt_creds settings",
            source="aws",
        )
    if isinstance(exc, boto.CredentialRetrievalError):
        return SourceError(
            f"{where}: fetching AWS credentials from "
            f"{escape_controls(exc.kwargs.get('provider', 'a provider'), 80)} "
            "failed (instance metadata or SSO may be unavailable); try again, or check the role",
            source="aws",
            retryable=True,
        )
    if isinstance(exc, boto.ProfileNotFound):
        return SourceError(
            f"{where}: AWS profile {escape_controls(repr(exc.kwargs.get('profile')), 80)} is not in ~/.aws/config or "
            "~/.aws/credentials; fix profile_name (or AWS_PROFILE)",
            source="aws",
        )
    if isinstance(exc, boto.NoRegionError):
        return SourceError(
            f"{where}: no AWS region is configured; set region_name in the source's settings, "
            "or AWS_DEFAULT_REGION or AWS_REGION in the environment",
            source="aws",
        )
    # Anything else (a response botocore could not parse, ...) may carry the raw
    # answer in its message: name only its type.
    return SourceError(
        f"{where}: GetSecretValue failed with {type(exc).__module__}.{type(exc).__name__} "
        "(details withheld: they may quote the secret)",
        source="aws",
    )


def _from_client_error(
    exc: Any, *, where: str, secret_id: str, looked_for: tuple[str, ...], attempts: int
) -> N3XTCredsError:
    error = exc.response.get("Error") or {}
    meta = exc.response.get("ResponseMetadata") or {}
    code = escape_controls(error.get("Code") or "Unknown", 80)
    message = str(error.get("Message") or "")
    status = meta.get("HTTPStatusCode")
    request_id = escape_controls(meta.get("RequestId") or "n/a", 80)
    details = f"AWS error {code}, HTTP {status}, request id {request_id}"

    if code in _NOT_FOUND:
        return CredentialsNotFoundError(
            f"{where}: not found ({details}); check the secret id, region and "
            "version stage/id, e.g. `aws secretsmanager describe-secret --secret-id "
            f"{secret_id}`",
            source="aws",
            looked_for=looked_for,
        )
    if code == "InvalidRequestException" and ("delet" in message.lower()):
        return CredentialsNotFoundError(
            f"{where}: the secret is marked for deletion ({details}); restore it with "
            f"`aws secretsmanager restore-secret --secret-id {secret_id}` or point the "
            "source at the secret that replaced it",
            source="aws",
            looked_for=looked_for,
        )
    if code in _DENIED or (status == 403 and code not in _BAD_AWS_CREDENTIALS):
        return SourceError(
            f"{where}: access denied ({details}); the IAM identity this process runs as "
            "(see `aws sts get-caller-identity`) needs secretsmanager:GetSecretValue on "
            "this secret's ARN, and the secret's resource policy must not deny it",
            source="aws",
        )
    if code in _BAD_AWS_CREDENTIALS:
        return SourceError(
            f"{where}: AWS rejected this process's AWS credentials ({details}); they are "
            "unknown, expired or for another partition — renew the session or fix the role",
            source="aws",
        )
    if code in _DECRYPTION:
        return SourceError(
            f"{where}: Secrets Manager could not decrypt the secret with its KMS key "
            f"({details}); grant kms:Decrypt on the secret's customer managed key to this "
            "identity (key policy or IAM), and check the key is enabled",
            source="aws",
        )
    if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
        return SourceError(
            f"{where}: Secrets Manager is throttling or failing ({details}) after "
            f"{attempts} attempt(s); it will be tried again at the next refresh",
            source="aws",
            retryable=True,
        )
    return SourceError(
        f"{where}: GetSecretValue was refused ({details}); the AWS error code names the "
        "cause (see the Secrets Manager API reference for GetSecretValue errors), and "
        "CloudTrail has the request under this request id",
        source="aws",
    )


def _endpoint(exc: Any) -> str:
    return escape_controls(exc.kwargs.get("endpoint_url") or "the Secrets Manager endpoint", 200)
