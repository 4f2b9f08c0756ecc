"""moto on loopback for the AWS half: one ThreadedMotoServer per session, state reset per test.

The server runs in this process, so tests can also reach moto's backends directly (to steer a
crawler's state, which the real service changes on its own). Every boto3 client is pointed at it
through AWS_ENDPOINT_URL and dummy keys, so nothing here can reach real AWS.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from tasks.core.prefect_server import free_port

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAINSIGHTFLOWTEST"
# Distinctive so a leak into any output is easy to spot.
SECRET_ACCESS_KEY = "insightflow-test-secret-7f3c9e1b"


@pytest.fixture(scope="session")
def moto_server():
    """A moto server on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> dict[str, str]:
    """Dummy AWS settings pointing at moto, and a clean moto state; returns the variables set."""
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
    }
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def aws_credentials(aws_env):
    """An unsaved AwsCredentials block for moto."""
    from prefect_aws import AwsClientParameters, AwsCredentials

    return AwsCredentials(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=aws_env["AWS_ENDPOINT_URL"]),
    )


@pytest.fixture
def make_bucket(aws_credentials):
    """Create an S3 bucket in moto and return an unsaved S3Bucket block over it."""
    from prefect_aws.s3 import S3Bucket

    def make(name: str = "insightflow-lake", folder: str = "") -> S3Bucket:
        client = aws_credentials.get_client("s3")
        if name not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=name)
        return S3Bucket(bucket_name=name, bucket_folder=folder, credentials=aws_credentials)

    return make


@pytest.fixture(scope="session")
def aws_standin():
    """The Athena stand-in (standins/aws) on 127.0.0.1: Athena answered over DuckDB, everything else by moto."""
    from standins.aws import AwsStandIn

    standin = AwsStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def standin_env(aws_standin, monkeypatch) -> dict[str, str]:
    """Like ``aws_env``, but every AWS service (Athena too) at the stand-in; moto and Athena state reset."""
    httpx.post(f"{aws_standin.url}/moto-api/reset", timeout=10).raise_for_status()
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": aws_standin.url,
    }
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
