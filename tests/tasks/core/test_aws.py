"""The AWS clients' stated retry policy, measured on the wire: moto behind a fault-injecting proxy.

``AWS_MAX_ATTEMPTS=1`` in the environment used to make every S3 SlowDown and Glue throttle fatal
(botocore's default policy defers to the environment). The product's ``Config`` wins over it now; a block
that states its own retries wins over the product's default.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tasks.core.aws import client_config, with_retries
from tests.support.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.support.fault_proxy import FaultProxy, Rule, json_api, s3_put

pytestmark = pytest.mark.aws


def _credentials(endpoint: str, config: dict | None = None):
    from prefect_aws import AwsClientParameters, AwsCredentials

    return AwsCredentials(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint, config=config),
    )


def _lake(credentials):
    from prefect_aws.s3 import S3Bucket

    from tasks.core.lake.s3 import S3Lake

    return S3Lake(S3Bucket(bucket_name="insightflow-lake", credentials=credentials))


@pytest.fixture
def proxy(aws_env, make_bucket, monkeypatch):
    make_bucket("insightflow-lake")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    with FaultProxy(aws_env["AWS_ENDPOINT_URL"]) as fault_proxy:
        yield fault_proxy


def test_slowdown_and_throttling_are_retried_although_the_environment_allows_one_attempt(proxy, aws_credentials):
    proxy.rules += [
        Rule(s3_put("/raw/iowrt/"), 503, "SlowDown", times=2),
        Rule(json_api("GetDatabase"), 400, "ThrottlingException", times=2),
    ]
    credentials = _credentials(proxy.url)  # a block as saved before this policy existed: no config
    lake = _lake(credentials)  # S3Lake states the product's retries on the block it is given

    lake.write("raw/iowrt/year=2024/month=01/data.parquet", b"PAR1 rows PAR1")
    from tasks.insightflow.catalog.glue import ensure_database

    assert ensure_database(credentials.get_client("glue"), "retry_db") is True

    assert proxy.count(s3_put("/raw/iowrt/")) == 3  # two SlowDowns, then the write
    assert proxy.count(json_api("GetDatabase")) == 3
    # Independently of the proxy: moto holds the object and the database.
    body = aws_credentials.get_client("s3").get_object(
        Bucket="insightflow-lake", Key="raw/iowrt/year=2024/month=01/data.parquet"
    )["Body"]
    assert body.read() == b"PAR1 rows PAR1"
    assert aws_credentials.get_client("glue").get_database(Name="retry_db")["Database"]["Name"] == "retry_db"


def test_without_a_stated_policy_the_environment_wins_and_one_slowdown_fails(proxy):
    proxy.rules.append(Rule(s3_put("/raw/iowrt/"), 503, "SlowDown", times=1))
    client = _credentials(proxy.url).get_client("s3")  # no with_retries: botocore reads AWS_MAX_ATTEMPTS=1
    with pytest.raises(ClientError, match="SlowDown"):
        client.put_object(Bucket="insightflow-lake", Key="raw/iowrt/x.parquet", Body=b"x")
    assert proxy.count(s3_put("/raw/iowrt/")) == 1


def test_a_block_that_states_its_retries_keeps_them(proxy, monkeypatch):
    monkeypatch.setenv("INSIGHTFLOW_AWS_MAX_ATTEMPTS", "20")
    proxy.rules.append(Rule(s3_put("/raw/iowrt/"), 503, "SlowDown"))
    block = _credentials(proxy.url, config={"retries": {"mode": "standard", "total_max_attempts": 2}})
    lake = _lake(block)
    assert block.aws_client_parameters.config["retries"]["total_max_attempts"] == 2
    with pytest.raises(ClientError, match="SlowDown"):
        lake.write("raw/iowrt/x.parquet", b"x")
    assert proxy.count(s3_put("/raw/iowrt/")) == 2


def test_registration_stores_the_retry_policy_in_the_credentials_block(monkeypatch):
    from blocks import aws

    env = {
        "AWS_REGION": REGION,
        "INSIGHTFLOW_LAKE_BUCKET": "lake",
        "INSIGHTFLOW_ATHENA_RESULTS_BUCKET": "results",
        "INSIGHTFLOW_AWS_AUTH": "default",
        "INSIGHTFLOW_AWS_MAX_ATTEMPTS": "5",
        "INSIGHTFLOW_AWS_RETRY_MODE": "adaptive",
    }
    credentials = next(b.block for b in aws.plan(env).blocks if b.name == aws.CREDENTIALS_BLOCK)
    assert credentials.aws_client_parameters.config == {"retries": {"mode": "adaptive", "total_max_attempts": 5}}
    assert client_config({})["retries"] == {"mode": "standard", "total_max_attempts": 8}
    with pytest.raises(ValueError, match="INSIGHTFLOW_AWS_RETRY_MODE"):
        client_config({"INSIGHTFLOW_AWS_RETRY_MODE": "forever"})
    assert with_retries(_credentials("http://127.0.0.1:1")).aws_client_parameters.config == client_config({})
