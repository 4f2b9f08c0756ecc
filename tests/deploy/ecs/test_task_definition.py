"""The ECS side, wire-checked: what prefect-aws's ECS worker registers and runs for each deployment, on moto.

For each deployment in prefect.yaml, the job configuration is built the way the worker builds it
(`ECSJobConfiguration.resolve_for_flow_run`: the pool's base job template, shipped in
deploy/ecs/base-job-template.json with its placeholders filled, plus the deployment's job variables
from prefect.yaml with the image the build step outputs), then handed to the worker's public

pytestmark = pytest.mark.aws
`ECSWorker.run`, which prepares and registers the task definition and calls RunTask, against moto's
ECS and EC2 on loopback. What moto stored is read back with describe_task_definition and
describe_tasks and compared with values written out here from prefect.yaml's text and the template.
Two runs per deployment: the second must reuse the first's task definition, not register a revision.

No Prefect server: one takes 15-90 s to start on these machines. The worker would read the flow
from the API, so a stub client answers that one call; the flow run, deployment and work pool are
the API's own schema objects. Worker logs go nowhere (logging to the API is off during `run`).

Where prefect-aws 0.7.12 puts things (pinned below, so an upgrade that moves them fails here):
the task definition holds image, cpu, memory, execution role, log configuration, network mode,
compatibilities and secrets; the RunTask request's overrides hold the command, the environment
(every Prefect setting the worker has, including PREFECT_API_URL) and the task role.
"""

from __future__ import annotations

import asyncio
import json
import re
from uuid import UUID, uuid4

import boto3
import pytest
import yaml

from tests.support import REPO_ROOT

TEMPLATE_PATH = REPO_ROOT / "deploy" / "ecs" / "base-job-template.json"

POOL = "insightflow-ecs"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"  # tests/support/aws.py
CLUSTER = "insightflow"
EXECUTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/insightflow-ecs-execution"
TASK_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/insightflow-flow-runs"
LOG_GROUP = "/insightflow/flow-runs"  # the template's cloudwatch_logs_options

# What prefect-docker's build_docker_image step outputs for INSIGHTFLOW_IMAGE_NAME/INSIGHTFLOW_IMAGE_TAG
# (image = f"{image_name}:{tag}"; tests/deploy/test_prefect_yaml.py checks it through a real `prefect deploy`).
IMAGE_NAME = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/insightflow"
IMAGE_TAG = "3f2a9c1d0b7e"
BUILD_IMAGE_OUTPUT = {"image_name": IMAGE_NAME, "tag": IMAGE_TAG, "image": f"{IMAGE_NAME}:{IMAGE_TAG}"}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/insightflow:3f2a9c1d0b7e"

# The worker's own settings; it copies every set Prefect setting into each task's environment.
WORKER_API_URL = "https://prefect.insightflow.internal/api"
# Distinctive so a leak into any request or stored field is easy to spot.
API_KEY = "pnu_insightflowtestkey7c1e"
API_AUTH_STRING = "admin:insightflow-test-auth-5d2b"

# From prefect.yaml's text: deployment -> (flow name, cpu units, memory MiB).
DEPLOYMENTS = {
    "insightflow-daily": ("insightflow", 1024, 4096),
    "football-standings": ("football", 512, 1024),
}


def deployment_job_variables(name: str) -> dict:
    """The deployment's job variables as `prefect deploy` stores them: build-step outputs templated in."""
    from prefect.utilities.templating import apply_values

    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == name]
    return apply_values(deployment["work_pool"]["job_variables"], {"build-image": BUILD_IMAGE_OUTPUT})


@pytest.fixture
def fargate_run_task_on_moto(monkeypatch):
    """Let moto 5.2.5 RunTask a Fargate task definition whose container sets no memory of its own.

    Real ECS accepts it (Fargate takes the task-level memory); moto sums container memory for EC2
    placement and raises TypeError on the missing value. That sum means nothing for Fargate.
    """
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def tolerant(task_definition):
        try:
            return original(task_definition)
        except TypeError:
            return {"CPU": 0, "MEMORY": 0, "PORTS": [], "PORTS_UDP": []}

    monkeypatch.setattr(EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(tolerant))


@pytest.fixture
def aws(aws_env, fargate_run_task_on_moto) -> dict:
    """The AWS side a user sets up once: VPC, two private subnets, a security group, a cluster, two secrets."""
    ec2 = boto3.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # Private subnets reach ECR, Secrets Manager and CloudWatch through VPC endpoints, which need DNS
    # hostnames; moto 5.2.5's RunTask also fails (no privateDnsName on the task's ENI) without them.
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
        for cidr, zone in (("10.20.1.0/24", "a"), ("10.20.2.0/24", "b"))
    ]
    security_group = ec2.create_security_group(GroupName="insightflow-flow-runs", Description="flow runs", VpcId=vpc_id)
    boto3.client("ecs").create_cluster(clusterName=CLUSTER)
    secrets = boto3.client("secretsmanager")
    return {
        "vpc_id": vpc_id,
        "subnets": subnets,
        "security_group": security_group["GroupId"],
        "api_key_arn": secrets.create_secret(Name="insightflow/prefect-api-key", SecretString=API_KEY)["ARN"],
        "auth_string_arn": secrets.create_secret(
            Name="insightflow/prefect-api-auth-string", SecretString=API_AUTH_STRING
        )["ARN"],
    }


def filled_template(aws: dict) -> dict:
    """deploy/ecs/base-job-template.json with every `<PLACEHOLDER>` replaced, as docs/deploy.md says to."""
    text = TEMPLATE_PATH.read_text()
    for placeholder, value in {
        "<ECS_CLUSTER>": CLUSTER,
        "<VPC_ID>": aws["vpc_id"],
        "<PRIVATE_SUBNET_ID_A>": aws["subnets"][0],
        "<PRIVATE_SUBNET_ID_B>": aws["subnets"][1],
        "<SECURITY_GROUP_ID>": aws["security_group"],
        "<EXECUTION_ROLE_ARN>": EXECUTION_ROLE_ARN,
        "<TASK_ROLE_ARN>": TASK_ROLE_ARN,
    }.items():
        assert placeholder in text, placeholder
        text = text.replace(placeholder, value)
    assert not re.findall(r"<[A-Z_]+>", text), "a placeholder this test does not fill"
    template = json.loads(text)
    # The optional secrets docs/deploy.md describes, set as pool defaults like the rest.
    properties = template["variables"]["properties"]
    properties["prefect_api_key_secret_arn"]["default"] = aws["api_key_arn"]
    properties["prefect_api_auth_string_secret_arn"]["default"] = aws["auth_string_arn"]
    return template


class _FlowReader:
    """Stands in for the worker's PrefectClient: `resolve_for_flow_run` reads only the flow from it."""

    def __init__(self, flow):
        self.flow = flow

    async def read_flow(self, flow_id: UUID):
        assert flow_id == self.flow.id
        return self.flow


def run_on_moto(template: dict, deployment_name: str, runs: int = 2) -> dict:
    """What the ECS worker does with `runs` scheduled runs of the deployment; returns ids and what moto stored."""
    from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_KEY,
        PREFECT_API_URL,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )
    from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker

    flow = Flow(id=uuid4(), name=DEPLOYMENTS[deployment_name][0])
    deployment = DeploymentResponse(
        id=uuid4(),
        name=deployment_name,
        flow_id=flow.id,
        work_pool_name=POOL,
        job_variables=deployment_job_variables(deployment_name),
    )
    work_pool = WorkPool(id=uuid4(), name=POOL, type="ecs", base_job_template=template)
    flow_runs = [
        FlowRun(id=uuid4(), name=f"cheerful-otter-{n}", flow_id=flow.id, deployment_id=deployment.id)
        for n in range(runs)
    ]
    worker_settings = {
        PREFECT_API_URL: WORKER_API_URL,
        PREFECT_API_KEY: API_KEY,
        PREFECT_API_AUTH_STRING: API_AUTH_STRING,
    }

    async def worker_side() -> list[str]:
        worker = ECSWorker(work_pool_name=POOL, name="insightflow-ecs-worker")
        identifiers = []
        for flow_run in flow_runs:
            with temporary_settings(updates=worker_settings):
                configuration = await ECSJobConfiguration.resolve_for_flow_run(
                    flow_run,
                    client=_FlowReader(flow),
                    work_pool=work_pool,
                    worker_name=worker.name,
                    deployment=deployment,
                )
            with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: False}):
                identifiers.append((await worker.run(flow_run, configuration)).identifier)
        return identifiers

    ecs = boto3.client("ecs")
    tasks = []
    for identifier in asyncio.run(worker_side()):
        cluster_name, task_arn = identifier.split("::", 1)
        (task,) = ecs.describe_tasks(cluster=cluster_name, tasks=[task_arn], include=["TAGS"])["tasks"]
        tasks.append(task)
    return {
        "deployment_id": deployment.id,
        "flow_run_id": flow_runs[0].id,
        "cluster_name": cluster_name,
        "tasks": tasks,
        "task_definition": ecs.describe_task_definition(taskDefinition=tasks[0]["taskDefinitionArn"])["taskDefinition"],
    }


@pytest.mark.parametrize("deployment_name", sorted(DEPLOYMENTS))
def test_ecs_worker_registers_and_runs_the_deployment_as_the_template_and_prefect_yaml_say(aws, deployment_name):
    _, cpu, memory = DEPLOYMENTS[deployment_name]
    ran = run_on_moto(filled_template(aws), deployment_name)
    deployment_id = ran["deployment_id"]
    task_definition, task = ran["task_definition"], ran["tasks"][0]

    # Registered once per deployment: the next run finds it equal and reuses it.
    assert [t["taskDefinitionArn"] for t in ran["tasks"]] == [task_definition["taskDefinitionArn"]] * 2
    assert task_definition["revision"] == 1

    # The task definition, as registered.
    assert task_definition["family"] == f"prefect_{POOL}_{deployment_id}"
    assert task_definition["requiresCompatibilities"] == ["FARGATE"]
    assert task_definition["networkMode"] == "awsvpc"
    assert (task_definition["cpu"], task_definition["memory"]) == (str(cpu), str(memory))
    assert task_definition["executionRoleArn"] == EXECUTION_ROLE_ARN
    assert "taskRoleArn" not in task_definition  # prefect-aws 0.7.12 sends it per run, below
    (container,) = task_definition["containerDefinitions"]
    assert container["name"] == "prefect"
    assert container["image"] == IMAGE
    assert not container.get("environment")  # the environment goes per run, below
    assert sorted(container["secrets"], key=lambda s: s["name"]) == [
        {"name": "PREFECT_API_AUTH_STRING", "valueFrom": aws["auth_string_arn"]},
        {"name": "PREFECT_API_KEY", "valueFrom": aws["api_key_arn"]},
    ]
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-create-group": "true",
            "awslogs-group": LOG_GROUP,
            "awslogs-region": REGION,
            "awslogs-stream-prefix": f"prefect-logs_{POOL}_{deployment_id}",
        },
    }

    # The task, as RunTask started it.
    assert ran["cluster_name"] == CLUSTER
    assert task["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
    assert task["launchType"] == "FARGATE"
    overrides = task["overrides"]
    assert overrides["taskRoleArn"] == TASK_ROLE_ARN
    assert (overrides["cpu"], overrides["memory"]) == (str(cpu), str(memory))
    (container_override,) = overrides["containerOverrides"]
    assert container_override["name"] == "prefect"
    assert container_override["command"] == ["prefect", "flow-run", "execute"]
    environment = {item["name"]: item["value"] for item in container_override["environment"]}
    assert environment["PREFECT_API_URL"] == WORKER_API_URL
    assert environment["PREFECT__FLOW_RUN_ID"] == str(ran["flow_run_id"])
    assert environment["PREFECT__DEPLOYMENT_NAME"] == deployment_name
    assert environment["PREFECT__FLOW_NAME"] == DEPLOYMENTS[deployment_name][0]
    assert "PREFECT_API_KEY" not in environment and "PREFECT_API_AUTH_STRING" not in environment
    # The template's env default: heartbeats for the crash automation, API retries for outages.
    assert environment["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    assert (environment["PREFECT_CLIENT_MAX_RETRIES"], environment["PREFECT_CLIENT_RETRY_JITTER_FACTOR"]) == (
        "7",
        "0.2",
    )

    tags = {tag["key"]: tag["value"] for tag in task.get("tags", [])}
    assert tags["prefect.io/deployment-name"] == deployment_name
    assert tags["prefect.io/work-pool-name"] == POOL

    # The task's network interface: in the template's first private subnet, behind its security group.
    (attachment,) = task["attachments"]
    details = {item["name"]: item["value"] for item in attachment["details"]}
    assert details["subnetId"] == aws["subnets"][0]
    (eni,) = boto3.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])[
        "NetworkInterfaces"
    ]
    assert [group["GroupId"] for group in eni["Groups"]] == [aws["security_group"]]

    stored = json.dumps([task_definition, task], default=str)
    assert API_KEY not in stored and API_AUTH_STRING not in stored


def test_shipped_template_is_prefect_aws_default_with_only_our_defaults_set():
    """A prefect-aws upgrade that changes its template fails here: re-dump it and set the same defaults."""
    from prefect_aws.workers.ecs_worker import ECSWorker

    shipped = json.loads(TEMPLATE_PATH.read_text())
    default = ECSWorker.get_default_base_job_template()
    assert shipped["job_configuration"] == default["job_configuration"]

    shipped_properties = shipped["variables"]["properties"]
    default_properties = default["variables"]["properties"]
    changed = {
        name
        for name in default_properties
        if shipped_properties.get(name, {}).get("default") != default_properties[name].get("default")
    }
    assert changed == {
        "cluster",
        "vpc_id",
        "network_configuration",
        "execution_role_arn",
        "task_role_arn",
        "configure_cloudwatch_logs",
        "cloudwatch_logs_options",
        "env",  # heartbeats and API retries (tasks/core/orchestration.py)
    }
    for name in changed:  # otherwise the very schema prefect-aws publishes, descriptions included
        shipped_properties[name].pop("default")
        if "default" in default_properties[name]:
            shipped_properties[name]["default"] = default_properties[name]["default"]
    assert shipped["variables"] == default["variables"]


@pytest.mark.parametrize("deployment_name", sorted(DEPLOYMENTS))
def test_shipped_template_and_job_variables_pass_the_servers_work_pool_validation(deployment_name):
    """What `prefect work-pool create --base-job-template` and `prefect deploy` have the server check.

    The placeholder rule is the server's `validate_base_job_template` (prefect/server/schemas/actions.py)
    over the same `find_placeholders`; importing prefect.server for it costs 4-13 s here.
    """
    from prefect.utilities.schema_tools import is_valid_schema, validate
    from prefect.utilities.templating import find_placeholders

    template = json.loads(TEMPLATE_PATH.read_text())
    schema = template["variables"]
    used = {p.name for p in find_placeholders(json.dumps(template["job_configuration"]))}
    assert used and used <= set(schema["properties"])
    is_valid_schema(schema, preprocess=False)
    defaults = {name: prop["default"] for name, prop in schema["properties"].items() if prop.get("default") is not None}
    for values in (defaults, {**defaults, **deployment_job_variables(deployment_name)}):
        # The arguments the server's validation passes (prefect/server/api/validation.py).
        validate(
            values, schema, raise_on_error=True, preprocess=True, ignore_required=True, allow_none_with_default=True
        )


# Fargate's task sizes (AWS ECS developer guide, "Task CPU and memory"): cpu -> allowed memory MiB.
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4096 + 1, 1024)),
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
}


@pytest.mark.parametrize("deployment_name", sorted(DEPLOYMENTS))
def test_each_deployments_cpu_and_memory_is_a_size_fargate_accepts(deployment_name):
    """Real ECS rejects other pairs at RegisterTaskDefinition; moto does not check, so this does."""
    job_variables = deployment_job_variables(deployment_name)
    assert (job_variables["cpu"], job_variables["memory"]) == DEPLOYMENTS[deployment_name][1:]
    assert job_variables["memory"] in FARGATE_SIZES[job_variables["cpu"]]


def test_every_template_placeholder_is_explained_in_the_deploy_docs():
    placeholders = set(re.findall(r"<[A-Z_]+>", TEMPLATE_PATH.read_text()))
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert placeholders and {p for p in placeholders if p not in docs} == set()


def test_api_key_secret_arn_needs_a_worker_that_has_an_api_key():
    """prefect-aws 0.7.12 deletes PREFECT_API_KEY from the run's env unconditionally when the ARN is set.

    A self-hosted server's worker has no API key, so every run would fail to submit with KeyError;
    docs/deploy.md therefore says: self-hosted, the auth string ARN; Prefect Cloud, the API key ARN.
    When this starts passing without the key, prefect-aws fixed it and the docs can relax.
    """
    from prefect.client.schemas.objects import FlowRun
    from prefect.settings import PREFECT_API_KEY, temporary_settings
    from prefect_aws.workers.ecs_worker import ECSJobConfiguration

    configuration = ECSJobConfiguration(
        task_definition={"containerDefinitions": [{"image": IMAGE}]},
        prefect_api_key_secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:insightflow/prefect-api-key",
        prefect_api_auth_string_secret_arn=(
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:insightflow/prefect-api-auth-string"
        ),
    )
    flow_run = FlowRun(id=uuid4(), name="cheerful-otter", flow_id=uuid4())
    with temporary_settings(restore_defaults={PREFECT_API_KEY}), pytest.raises(KeyError, match="PREFECT_API_KEY"):
        configuration.prepare_for_flow_run(flow_run)
