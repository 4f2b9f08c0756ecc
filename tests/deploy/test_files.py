"""Static checks of the deployment files: prefect.yaml, Dockerfile, .dockerignore, automations, alert block.

No Docker engine runs here, so the Dockerfile is checked as text against the repository: the base image
matches the pinned Prefect, every path it copies exists and survives .dockerignore, it installs the
same pyproject (and lock file) as CI, and it runs as a non-root user.
"""

from __future__ import annotations

import inspect
import re
import shlex
import tomllib
from datetime import timedelta
from uuid import uuid4

import pytest
import yaml

from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

PREFECT_YAML = REPO_ROOT / "prefect.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
EXPECTED = {
    "insightflow-daily": {
        "entrypoint": "flows/insightflow.py:insightflow",
        "schedule": {"cron": "0 5 * * *", "timezone": "UTC"},
        "collision_strategy": "ENQUEUE",
        "parameters": {"target": "prod"},
    },
    "football-standings": {
        "entrypoint": "flows/football.py:football",
        "schedule": {"interval": 300, "timezone": "UTC"},
        "collision_strategy": "CANCEL_NEW",
        "parameters": {"target": "prod"},
    },
    # Issue 21: the daily full check (every data test over all rows) scheduled on its own.
    "football-full-check": {
        "entrypoint": "flows/football.py:football",
        "schedule": {"cron": "30 3 * * *", "timezone": "UTC"},
        "collision_strategy": "CANCEL_NEW",
        "parameters": {"target": "prod", "full_check": True},
    },
}


def load_prefect_yaml() -> dict:
    return yaml.safe_load(PREFECT_YAML.read_text())


def deployments() -> dict[str, dict]:
    return {d["name"]: d for d in load_prefect_yaml()["deployments"]}


def placeholders(value) -> list[str]:
    """Every `{{ ... }}` expression in a nested YAML value, with the string it sits in."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in placeholders(v)]
    if isinstance(value, list):
        return [p for v in value for p in placeholders(v)]
    if isinstance(value, str):
        return [(m.group(1).strip(), value) for m in re.finditer(r"\{\{(.*?)\}\}", value)]
    return []


# ---------------------------------------------------------------- prefect.yaml


def test_prefect_yaml_validates_with_prefects_own_model():
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(load_prefect_yaml())
    assert sorted(d.name for d in model.deployments) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deployment_has_schedule_concurrency_and_metadata_as_specified(name):
    deployment, expected = deployments()[name], EXPECTED[name]
    assert deployment["entrypoint"] == expected["entrypoint"]
    assert deployment["schedules"] == [expected["schedule"]]
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": expected["collision_strategy"]}
    assert deployment["parameters"] == expected["parameters"]
    assert "insightflow" in deployment["tags"]
    assert len(deployment["description"]) > 40
    job_variables = deployment["work_pool"]["job_variables"]
    assert job_variables["image"] == "{{ build-image.image }}"
    assert isinstance(job_variables["cpu"], int) and isinstance(job_variables["memory"], int)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deployment_entrypoint_file_exists(name):
    path, _, function = EXPECTED[name]["entrypoint"].partition(":")
    source = REPO_ROOT / path
    if not source.exists():
        pytest.fail(f"{path} does not exist yet")
    assert re.search(rf"^def {function}\(", source.read_text(), re.M)


def test_work_pool_comes_from_prefect_setting_with_insightflow_ecs_default():
    # No work_pool.name in the file: PREFECT_DEFAULT_WORK_POOL_NAME fills it, for --all too (which
    # ignores --pool); prefect.toml gives the default.
    for deployment in deployments().values():
        assert "name" not in deployment["work_pool"]
    toml = REPO_ROOT / "prefect.toml"
    assert toml.exists(), "prefect.toml must set [deployments] default_work_pool_name = 'insightflow-ecs'"
    assert tomllib.loads(toml.read_text())["deployments"]["default_work_pool_name"] == "insightflow-ecs"


def test_build_and_push_use_prefect_docker_with_image_from_environment():
    data = load_prefect_yaml()
    build = {next(iter(step)): next(iter(step.values())) for step in data["build"]}
    push = {next(iter(step)): next(iter(step.values())) for step in data["push"]}
    image = build["prefect_docker.deployments.steps.build_docker_image"]
    assert image["id"] == "build-image"
    assert image["image_name"] == "{{ $INSIGHTFLOW_IMAGE_NAME }}"
    assert image["tag"] == "{{ $INSIGHTFLOW_IMAGE_TAG }}"
    assert image["dockerfile"] == "Dockerfile"
    pushed = push["prefect_docker.deployments.steps.push_docker_image"]
    assert pushed["image_name"] == "{{ build-image.image_name }}" and pushed["tag"] == "{{ build-image.tag }}"


def test_step_functions_exist_and_accept_the_given_arguments():
    from prefect.utilities.importtools import import_object

    data = load_prefect_yaml()
    for step in data["build"] + data["push"] + data["pull"]:
        ((fqn, inputs),) = step.items()
        function = inspect.unwrap(import_object(fqn))
        parameters = inspect.signature(function).parameters
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        for key in set(inputs) - {"id", "requires"}:
            assert key in parameters or takes_kwargs, f"{fqn} takes no {key!r}"


def test_no_block_templating_and_no_literal_credentials():
    text = PREFECT_YAML.read_text()
    assert "prefect.blocks" not in "\n".join(v for _, v in placeholders(load_prefect_yaml()))
    assert "{{ prefect.blocks" not in text and "{{prefect.blocks" not in text
    credential_patterns = [
        r"AKIA[0-9A-Z]{16}",  # AWS access key id
        r"aws_secret_access_key\s*:",
        r"password\s*:",
        r"(api_key|token|secret)\s*:\s*\S",
        r"hooks\.slack\.com/services/",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    ]
    for pattern in credential_patterns:
        assert not re.search(pattern, text, re.I), pattern


def test_environment_placeholders_are_whole_values_and_required_ones_are_guarded():
    # A missing `{{ $X }}` becomes "" (inside a string: "repo:" for "repo:{{ $X }}"). Whole-value
    # placeholders let the step defaults apply (the tag), and the guard step fails the deploy for the rest.
    data = load_prefect_yaml()
    env_placeholders = [(expr, s) for expr, s in placeholders(data) if expr.startswith("$")]
    assert env_placeholders
    for expr, string in env_placeholders:
        assert string.strip() == f"{{{{ {expr} }}}}", f"{string!r} embeds {expr} in a longer string"
    guard = next(iter(data["build"][0].values()))
    assert next(iter(data["build"][0])) == "prefect.deployments.steps.run_shell_script"
    assert guard["shell"] is True
    assert "${INSIGHTFLOW_IMAGE_NAME:?" in guard["script"]


def test_docker_engine_is_checked_right_before_the_image_build():
    steps = [next(iter(step)) for step in load_prefect_yaml()["build"]]
    check = steps.index("flows._deploy_steps.check_docker_engine")
    assert steps[check + 1] == "prefect_docker.deployments.steps.build_docker_image"


def test_build_args_default_to_the_dockerfiles_base_and_no_extra_ca(monkeypatch):
    from flows._deploy_steps import image_build_args

    monkeypatch.delenv("INSIGHTFLOW_BASE_IMAGE", raising=False)
    monkeypatch.delenv("INSIGHTFLOW_BUILD_EXTRA_CA", raising=False)
    monkeypatch.chdir(REPO_ROOT)
    assert image_build_args() == {
        "base_image": f"prefecthq/prefect:{pinned_prefect_version()}-python3.11",
        "extra_ca_certs": "",
    }
    monkeypatch.setenv("INSIGHTFLOW_BASE_IMAGE", "mirror.example:5000/prefect:3.8.8-python3.11")
    assert image_build_args()["base_image"] == "mirror.example:5000/prefect:3.8.8-python3.11"
    steps = load_prefect_yaml()["build"]
    build = next(s for s in steps if "prefect_docker.deployments.steps.build_docker_image" in s)
    assert build["prefect_docker.deployments.steps.build_docker_image"]["buildargs"] == {
        "BASE_IMAGE": "{{ build-args.base_image }}",
        "EXTRA_CA_CERTS": "{{ build-args.extra_ca_certs }}",
    }


def test_build_args_read_a_proxy_ca_from_a_file_or_a_directory_and_refuse_anything_else(monkeypatch, tmp_path):
    from flows._deploy_steps import image_build_args

    monkeypatch.chdir(REPO_ROOT)
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "a.crt").write_text(pem)
    (tmp_path / "b.crt").write_text(pem.replace("MIIB", "MIIC"))
    (tmp_path / "notes.txt").write_text("not a cert")
    monkeypatch.setenv("INSIGHTFLOW_BUILD_EXTRA_CA", str(tmp_path))
    assert image_build_args()["extra_ca_certs"] == pem + pem.replace("MIIB", "MIIC")
    monkeypatch.setenv("INSIGHTFLOW_BUILD_EXTRA_CA", str(tmp_path / "a.crt"))
    assert image_build_args()["extra_ca_certs"] == pem
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("INSIGHTFLOW_BUILD_EXTRA_CA", str(tmp_path / "empty"))
    assert image_build_args()["extra_ca_certs"] == ""
    for bad in (tmp_path / "notes.txt", tmp_path / "missing.pem"):
        monkeypatch.setenv("INSIGHTFLOW_BUILD_EXTRA_CA", str(bad))
        with pytest.raises(SystemExit, match="INSIGHTFLOW_BUILD_EXTRA_CA="):
            image_build_args()


def test_docker_engine_check_exits_with_one_line_naming_the_engine_and_the_serve_command(monkeypatch):
    from flows._deploy_steps import check_docker_engine
    from tasks.core.prefect_server import free_port

    engine = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("DOCKER_HOST", engine)
    with pytest.raises(SystemExit) as exited:
        check_docker_engine(timeout=5)
    message = str(exited.value.code)
    assert "\n" not in message
    assert f"none answers at {engine} (ConnectionRefusedError" in message
    assert "python -m flows.serve" in message


def test_docker_engine_check_passes_when_the_engine_answers(monkeypatch, fake_docker_engine):
    from flows._deploy_steps import check_docker_engine

    monkeypatch.setenv("DOCKER_HOST", fake_docker_engine.url)
    assert check_docker_engine(timeout=5) == {"docker_engine": fake_docker_engine.url}


def test_pull_step_changes_into_the_directory_the_image_bakes_the_code_into():
    (pull,) = load_prefect_yaml()["pull"]
    assert pull == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $INSIGHTFLOW_APP_DIR }}"}}
    instructions = dockerfile_instructions()
    workdir = [args for op, args in instructions if op == "WORKDIR"][-1]
    env = " ".join(args for op, args in instructions if op == "ENV")
    assert f"INSIGHTFLOW_APP_DIR={workdir}" in env
    copied = [shlex.split(args)[-2] for op, args in instructions if op == "COPY"]
    for entrypoint in (e["entrypoint"] for e in EXPECTED.values()):
        top = entrypoint.split("/")[0] + "/"
        assert top in copied, f"{top} is not copied into the image"


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, args = line.partition(" ")
            instructions.append((op.upper(), args.strip()))
    return instructions


def pinned_prefect_version() -> str:
    """The prefect version uv.lock pins (what the image and every install get)."""
    match = re.search(r'^name = "prefect"\nversion = "([^"]+)"', (REPO_ROOT / "uv.lock").read_text(), re.M)
    assert match, "uv.lock pins no prefect"
    return match.group(1)


def test_base_image_is_the_official_prefect_image_of_the_pinned_version():
    # Both stages start from BASE_IMAGE, whose default is Prefect's image of the locked version; a
    # stand-in is a build argument (.ci/image), never an edit of this file.
    froms = [args for op, args in dockerfile_instructions() if op == "FROM"]
    assert froms == ["${BASE_IMAGE} AS deps", "${BASE_IMAGE}"]
    text = DOCKERFILE.read_text()
    first_from = text.index("\nFROM ")
    assert f"ARG BASE_IMAGE=prefecthq/prefect:{pinned_prefect_version()}-python3.11\n" in text[:first_from]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    prefect_requirement = next(d for d in pyproject["project"]["dependencies"] if re.match(r"prefect[<>=~! ]", d))
    from packaging.requirements import Requirement

    assert Requirement(prefect_requirement).specifier.contains(pinned_prefect_version())


def test_every_copied_path_exists_and_survives_dockerignore():
    from docker.utils.build import exclude_paths

    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = exclude_paths(str(REPO_ROOT), patterns, dockerfile="Dockerfile")
    for op, args in dockerfile_instructions():
        if op != "COPY" or "--from=" in args:  # --from copies out of another stage, not the context
            continue
        sources = [s for s in shlex.split(args)[:-1] if not s.startswith("--")]
        for source in sources:
            pattern = source.rstrip("/")
            if "*" in pattern:  # optional file such as requirements.lock*: at least one other source must exist
                continue
            assert (REPO_ROOT / pattern).exists(), f"COPY {source}: not in the repository"
            assert any(p == pattern or p.startswith(pattern + "/") for p in context), (
                f"COPY {source}: excluded by .dockerignore"
            )


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = set((REPO_ROOT / ".dockerignore").read_text().split())
    for pattern in (".git", ".venv", ".env", ".insightflow", "dbt/*/target", "dbt/*/dbt_packages", "**/*.duckdb"):
        assert pattern in patterns


def test_dockerfile_installs_the_lock_in_a_layer_below_the_code():
    # What it installs (uv.lock, as the README and CI do) is tests/test_lock.py's; here, the order.
    ops = dockerfile_instructions()
    first_code_copy = next(i for i, (op, args) in enumerate(ops) if op == "COPY" and args.startswith("flows/"))
    deps_copy = next(
        i for i, (op, args) in enumerate(ops) if op == "COPY" and args.startswith("pyproject.toml uv.lock")
    )
    deps_install = next(i for i, (op, args) in enumerate(ops) if op == "RUN" and "uv sync --frozen" in args)
    venv_copy = next(i for i, (op, args) in enumerate(ops) if op == "COPY" and args.startswith("--from=deps"))
    assert deps_copy < deps_install < venv_copy < first_code_copy, "dependencies must be layers below the code"
    # uv itself and binutils (strip) stay in the deps stage: nothing after the runtime FROM installs them.
    runtime_from = max(i for i, (op, _) in enumerate(ops) if op == "FROM")
    later_runs = " ".join(args for op, args in ops[runtime_from:] if op == "RUN")
    assert "apt-get" not in later_runs and "uv" not in later_runs.split() and "pip install" not in later_runs


def test_dockerfile_runs_as_non_root_and_bakes_dbt_at_build_time():
    instructions = dockerfile_instructions()
    user = [args for op, args in instructions if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert instructions[-1][0] == "USER"
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "dbt parse" in runs and "dbt deps" in runs
    for project in (REPO_ROOT / "dbt").iterdir():
        if project.is_dir():
            assert (project / "dbt_project.yml").exists() and (project / "profiles.yml").exists(), project


# ---------------------------------------------------------------- automations and the alert block


def test_automations_cover_exactly_the_deployments_in_prefect_yaml():
    from automations.alerts import DEPLOYMENTS

    assert sorted(DEPLOYMENTS) == sorted(deployments())


FAILURE = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}


def test_failure_alert_definitions_build_and_render():
    import prefect.server.events.actions  # noqa: F401 - registers the ui_url filters
    from prefect.events.actions import SendNotification
    from prefect.server.utilities.user_templates import validate_user_template

    from automations.alerts import definitions

    block_id = uuid4()
    built = [a for a in definitions(block_id) if a.trigger.expect == set(FAILURE)]
    assert len({a.name for a in built}) == len(built) == len(deployments())
    for automation in built:
        trigger = automation.trigger
        assert trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
        assert trigger.posture == "Reactive" and trigger.threshold == 1
        related = trigger.match_related
        assert related["prefect.resource.role"] in ("deployment", ["deployment"])
        (deployment,) = (
            [related["prefect.resource.name"]]
            if isinstance(related["prefect.resource.name"], str)
            else related["prefect.resource.name"]
        )
        assert automation.name.endswith(deployment)
        (action,) = automation.actions
        assert isinstance(action, SendNotification) and action.block_document_id == block_id
        for template in (action.subject, action.body):
            validate_user_template(template)
        text = action.subject + action.body
        for needle in ("flow.name", "deployment.name", "flow_run.name", "flow_run.state.message", "ui_url"):
            assert needle in text


class FakeAutomationClient:
    """Only the four client calls ``automations.apply`` makes, over a list."""

    def __init__(self):
        self.stored = []

    def read_automations_by_name(self, name):
        return [a for a in self.stored if a.name == name]

    def create_automation(self, automation):
        from prefect.events.schemas.automations import Automation

        self.stored.append(Automation(id=uuid4(), **automation.model_dump()))

    def update_automation(self, automation_id, automation):
        from prefect.events.schemas.automations import Automation

        self.stored = [
            Automation(id=a.id, **automation.model_dump()) if a.id == automation_id else a for a in self.stored
        ]

    def delete_automation(self, automation_id):
        self.stored = [a for a in self.stored if a.id != automation_id]


def test_apply_creates_then_changes_nothing_then_updates_and_removes_duplicates():
    from automations.alerts import CRASH_AUTOMATION, definitions
    from automations.apply import apply

    client, block = FakeAutomationClient(), uuid4()
    assert {o.outcome for o in apply(client, definitions(block))} == {"created"}
    assert {o.outcome for o in apply(client, definitions(block))} == {"unchanged"}
    assert len(client.stored) == 3 * len(deployments()) + 2

    client.stored[0] = client.stored[0].model_copy(update={"enabled": False})  # paused by an operator
    assert {o.outcome for o in apply(client, definitions(block))} == {"unchanged"}
    assert client.stored[0].enabled is False

    client.create_automation(definitions(block)[0])  # what a second Automation.create() would leave
    outcomes = apply(client, definitions(uuid4()))  # another block: every alert changes, the crash action does not
    assert {o.outcome for o in outcomes if o.name != CRASH_AUTOMATION} == {"updated"}
    assert [o.outcome for o in outcomes if o.name == CRASH_AUTOMATION] == ["unchanged"]
    assert sum(o.removed_duplicates for o in outcomes) == 1 and len(client.stored) == 3 * len(deployments()) + 2


def _rendered(automation) -> str:
    import prefect.server.events.actions  # noqa: F401 - registers the ui_url filters
    from prefect.server.utilities.user_templates import validate_user_template

    (action,) = automation.actions
    for template in (action.subject, action.body):
        validate_user_template(template)
    return action.subject + "\n" + action.body


def test_missed_run_alerts_watch_each_deployment_for_a_completed_run_within_its_window():
    from automations.alerts import definitions

    windows = {"insightflow-daily": timedelta(hours=26), "football-standings": timedelta(minutes=20)}
    built = {a.name: a for a in definitions(uuid4())}
    for deployment in deployments():
        automation = built[f"insightflow-missed-run-alert-{deployment}"]
        trigger = automation.trigger
        assert trigger.posture == "Proactive" and trigger.threshold == 1
        # after == expect == Completed: each Completed run restarts the window (a heartbeat).
        assert trigger.expect == trigger.after == {"prefect.flow-run.Completed"}
        assert not trigger.for_each
        assert trigger.match_related.root == {
            "prefect.resource.role": "deployment",
            "prefect.resource.name": deployment,
        }
        if deployment in windows:
            assert trigger.within == windows[deployment]
        text = _rendered(automation)
        assert deployment in text and "Completed run" in text


def test_hung_run_alerts_open_one_window_per_running_flow_run():
    from automations.alerts import definitions

    limits = {"insightflow-daily": timedelta(hours=2), "football-standings": timedelta(minutes=10)}
    built = {a.name: a for a in definitions(uuid4())}
    for deployment in deployments():
        trigger = built[f"insightflow-hung-run-alert-{deployment}"].trigger
        assert trigger.posture == "Proactive" and trigger.after == {"prefect.flow-run.Running"}
        assert FAILURE | {"prefect.flow-run.Completed", "prefect.flow-run.Cancelled"} == trigger.expect
        assert trigger.for_each == {"prefect.resource.id"}
        if deployment in limits:
            assert trigger.within == limits[deployment]
        assert "flow_run.name" in _rendered(built[f"insightflow-hung-run-alert-{deployment}"])


def test_windows_are_configurable_from_the_command_line(capsys):
    import json

    from automations.__main__ import main

    assert (
        main(
            ["apply", "--dry-run", "--missed-window", "insightflow-daily=30h", "--hung-limit", "football-standings=15m"]
        )
        == 0
    )
    printed = json.loads("[" + capsys.readouterr().out.replace("}\n{", "},\n{") + "]")
    within = {a["name"]: a["trigger"]["within"] for a in printed}
    assert within["insightflow-missed-run-alert-insightflow-daily"] == 30 * 3600
    assert within["insightflow-hung-run-alert-football-standings"] == 15 * 60
    assert within["insightflow-missed-run-alert-football-standings"] == 20 * 60  # default kept
    with pytest.raises(SystemExit):
        main(["apply", "--dry-run", "--missed-window", "no-such-deployment=1h"])


def test_stale_data_alert_reacts_to_the_flows_stale_event_and_names_the_dataset():
    from automations.alerts import definitions
    from tasks.insightflow.freshness import STALE_EVENT

    (stale,) = [a for a in definitions(uuid4()) if a.name == "insightflow-stale-data-alert"]
    assert stale.trigger.expect == {STALE_EVENT} and stale.trigger.posture == "Reactive"
    assert stale.trigger.match.root == {"prefect.resource.id": "insightflow.dataset.*"}
    text = _rendered(stale)
    for needle in ("prefect.resource.name", "newest_period", "age_days", "allowed_days", "reason"):
        assert needle in text


def test_alert_block_is_slack_or_custom_webhook_from_environment():
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    from blocks.alerts import ALERT_BLOCK, plan

    slack = plan({"INSIGHTFLOW_ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x"})
    assert [(b.name, type(b.block)) for b in slack.blocks] == [(ALERT_BLOCK, SlackWebhook)]

    webhook = plan(
        {"INSIGHTFLOW_ALERT_WEBHOOK_URL": "https://alerts.example/hook", "INSIGHTFLOW_ALERT_WEBHOOK_TOKEN": "t0k"}
    )
    (item,) = webhook.blocks
    assert isinstance(item.block, CustomWebhookNotificationBlock)
    assert item.block.json_data == {"subject": "{{subject}}", "body": "{{body}}"}
    assert item.block.headers == {"Authorization": "Bearer {{token}}"}
    assert item.block.secrets.get_secret_value() == {"token": "t0k"}
    assert "t0k" not in repr(item.block.headers)

    missing = plan({})
    assert not missing.ready and "INSIGHTFLOW_ALERT_WEBHOOK_URL" in missing.missing[0]
    with pytest.raises(ValueError, match="only one"):
        plan(
            {
                "INSIGHTFLOW_ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/x",
                "INSIGHTFLOW_ALERT_WEBHOOK_URL": "https://a",
            }
        )


# ---------------------------------------------------------------- heartbeats, crash automation, API retries

RUNTIME_SETTINGS = {  # tasks/core/orchestration.py's RUNTIME_ENV, written out: the values the docs quote
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    "PREFECT_CLIENT_MAX_RETRIES": "7",
    "PREFECT_CLIENT_RETRY_JITTER_FACTOR": "0.2",
}


def test_every_place_a_flow_runs_gets_heartbeats_and_outage_retries():
    import json

    from tasks.core.orchestration import RUNTIME_ENV

    assert RUNTIME_ENV == RUNTIME_SETTINGS
    dockerfile = DOCKERFILE.read_text().split("FROM ${BASE_IMAGE}\n")[-1]  # the runtime stage
    for name, value in RUNTIME_SETTINGS.items():
        assert re.search(rf"^\s+{name}={re.escape(value)}\b", dockerfile, re.M), f"Dockerfile ENV lacks {name}"
    template = json.loads((REPO_ROOT / "deploy" / "ecs" / "base-job-template.json").read_text())
    assert template["variables"]["properties"]["env"]["default"] == RUNTIME_SETTINGS
    assert template["job_configuration"]["env"] == "{{ env }}"
    serve = (REPO_ROOT / "flows" / "serve.py").read_text()
    assert "os.environ.setdefault(name, value)" in serve and "orchestration.RUNTIME_ENV" in serve


def test_the_settings_are_prefects_own_names_and_take_effect(monkeypatch):
    from prefect.settings import Settings

    for name, value in RUNTIME_SETTINGS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.flows.heartbeat_frequency == 30
    assert settings.client.max_retries == 7 and settings.client.retry_jitter_factor == 0.2
    # 7 retries wait 2 + 4 + ... + 128 s: longer than a 2-minute outage even at -20 % jitter.
    assert sum(2**n for n in range(1, 8)) * 0.8 > 180


def test_crash_automation_marks_a_silent_run_crashed_after_five_heartbeats():
    from prefect.client.schemas.objects import StateType

    from automations.alerts import CRASH_AUTOMATION, definitions

    built = {a.name: a for a in definitions(uuid4())}
    crash = built[CRASH_AUTOMATION]
    trigger = crash.trigger
    assert trigger.posture == "Proactive" and trigger.after == {"prefect.flow-run.heartbeat"}
    assert trigger.expect == FAILURE | {
        "prefect.flow-run.heartbeat",
        "prefect.flow-run.Completed",
        "prefect.flow-run.Cancelled",
        "prefect.flow-run.AwaitingRetry",
        "prefect.flow-run.Paused",
    }
    assert trigger.for_each == {"prefect.resource.id"} and trigger.within == timedelta(seconds=150)
    assert trigger.match_related.root == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": ["insightflow", "football"],
    }
    (action,) = crash.actions
    assert action.state == StateType.CRASHED and "docs/operations.md#crashed-run" in action.message
    # --heartbeat keeps the five-interval window for another frequency.
    other = {a.name: a for a in definitions(uuid4(), heartbeat=timedelta(seconds=60))}[CRASH_AUTOMATION]
    assert other.trigger.within == timedelta(minutes=5)
