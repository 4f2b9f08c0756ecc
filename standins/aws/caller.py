"""Who is calling: Athena acts on the caller's behalf, with the caller's permissions.

Real Athena reads the tables' S3 data, writes CTAS data and query results, and reads and writes Glue
with the credentials of whoever started the query. The stand-in does the same: it finds the secret of
the request's access key in the moto that runs in this process (an IAM user's key, or the temporary
key of an assumed role) and makes its own S3 and Glue calls with it, so moto's IAM enforcement, when
on, judges them against the caller's policy. A key moto does not know (``testing``, as most tests
use) leaves the stand-in's own keys in place, which is how moto treats such a key while enforcement
is off.

With enforcement on (``/moto-api/reset-auth``), the Athena action itself is authorized as moto
authorizes its own services: the signature is checked, then ``athena:<Action>`` against the work
group's ARN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/")


@dataclass(frozen=True)
class Caller:
    """A request's region and the keys the stand-in uses on its behalf."""

    region: str = "us-east-1"
    access_key_id: str = "standin"  # the stand-in's own keys, for a key moto does not know
    secret_access_key: str = "standin"
    session_token: str | None = None

    def client_kwargs(self) -> dict:
        kw = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        if self.session_token:
            kw["aws_session_token"] = self.session_token
        return kw


def caller_of(authorization: str) -> Caller:
    """The caller a SigV4 ``Authorization`` header names, with its secret when moto knows the key."""
    match = _CREDENTIAL.search(authorization or "")
    if not match:
        return Caller()
    key_id, region = match.groups()
    secret, token = _secret_of(key_id)
    if secret is None:
        return Caller(region=region)
    return Caller(region, key_id, secret, token)


def _secret_of(key_id: str) -> tuple[str | None, str | None]:
    """(secret, session token) of an IAM user's key or an assumed role's key in this process's moto."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for user in iam_backends[ACCOUNT]["aws"].users.values():
        for key in user.access_keys:
            if key.access_key_id == key_id:
                return key.secret_access_key, None
    for role in sts_backends[ACCOUNT]["aws"].assumed_roles:
        if role.access_key_id == key_id:
            return role.secret_access_key, role.session_token
    return None, None


class NotAuthorized(Exception):
    """The Athena action was refused, as moto refuses its own services' actions (``code`` is Athena's)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def authorize(method: str, path: str, body: bytes, headers: dict, action: str, work_group: str, region: str) -> None:
    """Check ``athena:<action>`` on the work group as moto checks its own actions, when enforcement is on."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1  # one more unauthenticated request, as moto counts them
        return
    from moto.iam.access_control import IAMRequest
    from werkzeug.exceptions import HTTPException  # moto's errors (AccessDenied, InvalidClientTokenId, ...)

    try:
        request = IAMRequest(
            account_id=ACCOUNT, method=method, path=path, data={}, body=body, headers=headers, action=action
        )
        request.check_signature()
        request.check_action_permitted(f"arn:aws:athena:{region}:{ACCOUNT}:workgroup/{work_group}")
    except HTTPException as exc:
        kind, message = getattr(exc, "error_type", ""), getattr(exc, "message", str(exc))
        code = "AccessDeniedException" if kind == "AccessDenied" else "UnrecognizedClientException"
        raise NotAuthorized(code, message) from None
