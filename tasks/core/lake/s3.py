"""The production lake: an S3 bucket (optionally a folder in it) behind a prefect-aws ``S3Bucket`` block.

Same contract as ``LocalLake``: one object per key, and a write is a single PUT (or, above boto3's
8 MB multipart threshold, a multipart upload that becomes visible only when completed), so readers
see the old object or the new one, never half. Partitions keep one fixed object name, so re-landing
a month replaces it instead of adding rows next to it.

prefect-aws quirks this module works around (prefect-aws 0.7.12):
- ``S3Bucket`` methods are ``async_dispatch``ed: inside an async flow they return coroutines, so
  every call passes ``_sync=True``.
- ``read_path``/``write_path`` skip adding ``bucket_folder`` when the path already starts with it
  (a folder named ``raw`` would then swallow the lake's own ``raw/`` prefix). We pass the full
  object key, which those methods then use unchanged.
- ``list_objects(folder)`` is a plain prefix match (``iowrt`` also matches ``iowrt_3d/``) and with an
  empty folder lists ``<bucket_folder>`` without a slash; we pass a trailing slash and filter again.
- The block has no delete; ``delete`` uses the block's own boto3 S3 client.

An access denial is re-raised as ``PermissionError`` naming the IAM action and the object, since S3's
own answer ("Access Denied") names neither; the actions are the ones deploy/iam/insightflow-task-policy.json grants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from blocks import names
from tasks.core.aws import retry_budget, with_retries
from tasks.core.lake.base import TMP_MARKER, Lake

if TYPE_CHECKING:
    from prefect_aws.s3 import S3Bucket

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        raise ValueError(f"invalid lake key {key!r}: use a relative POSIX path such as 'raw/iowrt/_manifest.json'")
    return key


def _raise_if_denied(exc: Exception, action: str, uri: str) -> None:
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    if code in _DENIED_CODES or (isinstance(exc, S3UploadFailedError) and "(AccessDenied)" in str(exc)):
        raise PermissionError(
            f"S3 denied {action} on {uri}: the credentials' IAM policy does not allow it "
            "(deploy/iam/insightflow-task-policy.json lists what the flows need)"
        ) from exc


class S3Lake(Lake):
    """A lake in an S3 bucket; keys live under the block's ``bucket_folder``."""

    def __init__(self, bucket: S3Bucket):
        if bucket.bucket_folder.startswith("/"):
            raise ValueError(f"S3 bucket folder {bucket.bucket_folder!r} must not start with '/'")
        with_retries(bucket.credentials)
        self.bucket = bucket
        self.folder = bucket.bucket_folder.strip("/")

    @classmethod
    def from_block_name(cls, name: str = names.LAKE) -> S3Lake:
        """Load the ``S3Bucket`` block ``name`` (registered by ``python -m blocks register``)."""
        from prefect_aws.s3 import S3Bucket

        try:
            bucket = S3Bucket.load(name, _sync=True)
        except ValueError as exc:
            raise ValueError(
                f"S3 bucket block {name!r} not found: run `python -m blocks register --only aws` (see docs/aws.md)"
            ) from exc
        return cls(bucket)

    def __repr__(self) -> str:
        return f"S3Lake({self.uri()!r})"

    def _s3(self):
        """The block's cached S3 client (the one its methods use) with the product's retry budget on it.

        prefect-aws builds and caches the client on first use and may rebuild it after its cache evicts
        it, so this runs before every operation (a no-op once the budget is on the client).
        """
        return retry_budget(self.bucket.credentials.get_client("s3"))

    def _object_key(self, key: str) -> str:
        _check_key(key)
        return f"{self.folder}/{key}" if self.folder else key

    def _s3_uri(self, object_key: str) -> str:
        return f"s3://{self.bucket.bucket_name}/{object_key}"

    def read(self, key: str) -> bytes | None:
        object_key = self._object_key(key)
        self._s3()
        try:
            return self.bucket.read_path(object_key, _sync=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                return None
            _raise_if_denied(exc, "s3:GetObject", self._s3_uri(object_key))
            raise

    def write(self, key: str, data: bytes) -> None:
        object_key = self._object_key(key)
        self._s3()
        try:
            self.bucket.write_path(object_key, data, _sync=True)
        except (ClientError, S3UploadFailedError) as exc:
            _raise_if_denied(exc, "s3:PutObject", self._s3_uri(object_key))
            raise

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that does not exist, so this is idempotent like LocalLake.delete.
        object_key = self._object_key(key)
        client = self._s3()
        try:
            client.delete_object(Bucket=self.bucket.bucket_name, Key=object_key)
        except ClientError as exc:
            _raise_if_denied(exc, "s3:DeleteObject", self._s3_uri(object_key))
            raise

    def list(self, prefix: str) -> list[str]:
        relative = prefix.strip("/")
        if relative:
            _check_key(relative)
            relative += "/"
        wanted = f"{self.folder}/{relative}" if self.folder else relative
        self._s3()
        try:
            objects = self.bucket.list_objects(relative, _sync=True)
        except ClientError as exc:
            _raise_if_denied(exc, "s3:ListBucket", f"s3://{self.bucket.bucket_name} (prefix {wanted})")
            raise
        strip = len(self.folder) + 1 if self.folder else 0
        return sorted(
            obj["Key"][strip:]
            for obj in objects
            if obj["Key"].startswith(wanted)
            and not obj["Key"].endswith("/")
            and not obj["Key"].rsplit("/", 1)[-1].startswith(TMP_MARKER)
        )

    def uri(self, key: str = "") -> str:
        base = f"s3://{self.bucket.bucket_name}"
        if self.folder:
            base += f"/{self.folder}"
        if not key:
            return base
        _check_key(key.rstrip("/") or key)
        return f"{base}/{key}"
