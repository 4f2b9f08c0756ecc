"""Landing on S3 survives being killed between writing partitions and switching the manifest."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest

from tasks.core.lake.s3 import S3Lake
from tasks.insightflow.catalog import glue as catalog
from tasks.insightflow.contracts import IOWRT
from tasks.insightflow.ingest.land import land
from tests.support import REPO_ROOT
from tests.tasks.insightflow.catalog.test_glue import fetched, iowrt_rows

pytestmark = pytest.mark.aws


# Runs ingest.land for version 2 in a child process that SIGKILLs itself at the manifest write,
# after every changed partition has been written: no except/finally gets to tidy up.
KILLED_LANDING = textwrap.dedent(
    """
    import os, signal, sys
    from prefect_aws import AwsClientParameters, AwsCredentials
    from prefect_aws.s3 import S3Bucket
    from tasks.insightflow.contracts import IOWRT
    from tasks.insightflow.ingest.land import land
    from tasks.core.lake.s3 import S3Lake
    from tests.tasks.insightflow.catalog.test_glue import fetched, iowrt_rows

    class DiesAtManifest(S3Lake):
        def write(self, key, data):
            if key.endswith("_manifest.json"):
                os.kill(os.getpid(), signal.SIGKILL)
            super().write(key, data)

    credentials = AwsCredentials(region_name="us-east-1",
                                 aws_client_parameters=AwsClientParameters(endpoint_url=os.environ["AWS_ENDPOINT_URL"]))
    lake = DiesAtManifest(S3Bucket(bucket_name="insightflow-lake", bucket_folder="lake", credentials=credentials))
    land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2), (2024, 3)], sales=200.0), fetched("iowrt", '"v2"'))
    sys.exit("the landing was meant to die before the manifest")
    """
)


def data_objects(lake: S3Lake) -> dict[str, bytes]:
    return {k: lake.read(k) for k in lake.list("raw/iowrt") if k.endswith(".parquet")}


def test_a_landing_killed_before_the_manifest_switch_leaves_complete_objects_and_the_rerun_converges(
    aws_env, make_bucket
):
    lake = S3Lake(make_bucket(folder="lake"))
    land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2)]), fetched("iowrt"))
    manifest_v1 = lake.read("raw/iowrt/_manifest.json")

    child = subprocess.run(
        [sys.executable, "-c", KILLED_LANDING],
        cwd=REPO_ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert child.returncode == -signal.SIGKILL, child.stderr
    # Old manifest still in place; every object is one whole Parquet file (no partial upload visible).
    assert lake.read("raw/iowrt/_manifest.json") == manifest_v1
    objects = data_objects(lake)
    assert sorted(objects) == [f"raw/iowrt/year=2024/month=0{m}/data.parquet" for m in (1, 2, 3)]
    assert all(pq.read_table(io.BytesIO(data)).num_rows == 1 for data in objects.values())

    rerun = land(lake, IOWRT, iowrt_rows([(2024, 1), (2024, 2), (2024, 3)], sales=200.0), fetched("iowrt", '"v2"'))

    manifest = lake.read_json("raw/iowrt/_manifest.json")
    objects = data_objects(lake)
    assert {p["key"]: p["sha256"] for p in manifest["partitions"].values()} == {
        key: hashlib.sha256(data).hexdigest() for key, data in objects.items()
    }
    rows = [r for data in objects.values() for r in pq.read_table(io.BytesIO(data)).to_pylist()]
    assert sorted(r["sales"] for r in rows) == [200.0, 201.0, 202.0]  # version 2 once, no duplicates
    # The stale manifest does not match what the killed run wrote, so the rerun rewrites every partition
    # (same fixed keys, so still one object each) and the catalog gets all three.
    assert rerun.partitions_written == ["year=2024/month=01", "year=2024/month=02", "year=2024/month=03"]
    glue = lake.bucket.credentials.get_client("glue")
    catalog.ensure_database(glue, "insightflow_raw")
    outcome = catalog.catalog_landed(glue, "insightflow_raw", lake, rerun)
    assert len(outcome.partitions_created) == 3
