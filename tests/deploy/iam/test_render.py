"""deploy/iam/render.py: every placeholder filled, values checked, optional statements dropped, ARNs exact."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.iam import renderer

pytestmark = pytest.mark.unit

RENDER = renderer()
ACCOUNT = {"AWS_ACCOUNT_ID": "123456789012", "AWS_REGION": "eu-west-1"}
TASK = {**ACCOUNT, "LAKE_BUCKET": "acme-lake", "ATHENA_RESULTS_BUCKET": "acme-athena-results", "LAKE_PREFIX": "prod"}
ARN = re.compile(
    r"arn:aws:(s3:::acme-(lake|athena-results)(/.*)?"
    r"|glue:eu-west-1:123456789012:(catalog|database/\w+|table/\w+/\*|crawler/[\w-]+)"
    r"|athena:eu-west-1:123456789012:workgroup/\w+)"
)


def test_the_task_policy_renders_with_exact_arns_and_no_wildcard_action():
    policy = RENDER.render("task", RENDER.resolve(TASK, {}))
    text = json.dumps(policy)
    assert "${" not in text
    resources = [
        r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert all(ARN.fullmatch(r) for r in resources), [r for r in resources if not ARN.fullmatch(r)]
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert not [a for a in actions if "*" in a or a in ("s3:DeleteBucket", "glue:DeleteDatabase")]
    assert "arn:aws:s3:::acme-lake/prod/raw/*" in resources  # the prefix, normalised to "prod/"
    assert "arn:aws:glue:eu-west-1:123456789012:database/insightflow_raw" in resources  # documented default
    assert "GlueCrawlerMode" not in {s["Sid"] for s in policy["Statement"]}  # no crawler named: not granted


def test_naming_a_crawler_grants_exactly_that_crawler():
    policy = RENDER.render("task", RENDER.resolve({**TASK, "GLUE_CRAWLER": "insightflow-raw"}, {}))
    crawler = next(s for s in policy["Statement"] if s["Sid"] == "GlueCrawlerMode")
    assert crawler["Resource"] == "arn:aws:glue:eu-west-1:123456789012:crawler/insightflow-raw"


def test_missing_and_malformed_values_are_all_named():
    with pytest.raises(RENDER.RenderError) as err:
        RENDER.render("task", RENDER.resolve({"AWS_ACCOUNT_ID": "12345", "LAKE_BUCKET": "lake*"}, {}))
    message = str(err.value)
    for expected in (
        "AWS_ACCOUNT_ID='12345' is not twelve digits",
        "LAKE_BUCKET='lake*' must not contain wildcards",
        "ATHENA_RESULTS_BUCKET is not set",
        "AWS_REGION is not set",
    ):
        assert expected in message


def test_the_command_reads_the_block_variables_and_exits_2_naming_what_is_missing(capsys, monkeypatch):
    monkeypatch.setenv("INSIGHTFLOW_LAKE_BUCKET", "acme-lake")
    monkeypatch.setenv("INSIGHTFLOW_ATHENA_RESULTS_BUCKET", "acme-athena-results")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ACCOUNT_ID", raising=False)
    assert RENDER.main(["task"]) == 2
    assert "AWS_ACCOUNT_ID is not set" in capsys.readouterr().err
    assert RENDER.main(["task", "--aws-account-id", "123456789012"]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert "arn:aws:s3:::acme-lake" in json.dumps(policy)
    for kind, extra in [("worker", ["--ecs-cluster", "insightflow"]), ("execution", [])]:
        assert RENDER.main([kind, "--aws-account-id", "123456789012", *extra]) == 0
        assert "${" not in capsys.readouterr().out
