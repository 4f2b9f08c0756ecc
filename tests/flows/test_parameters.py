"""The flows' parameters: few, typed, and every deployment of prefect.yaml still valid against them.

The server checks a deployment's parameters (and each run's) against the flow's parameter schema when
``enforce_parameter_schema`` is on, Prefect 3's default; the worker validates them again with pydantic
before the flow starts. Both checks run here over prefect.yaml as written, and over the parameters
``python -m flows.serve`` gives the same deployments locally, so a signature change that would break
a deployment fails this test instead of the 05:00 run.
"""

from __future__ import annotations

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools import validate

from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

DEPLOYMENTS = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
ENTRYPOINTS = sorted({d["entrypoint"] for d in DEPLOYMENTS})
MAX_PARAMETERS = 6


def flow_of(entrypoint: str):
    return load_flow_from_entrypoint(str(REPO_ROOT / entrypoint))


def schema_errors(flow, parameters: dict) -> list[str]:
    """What the server's schema check says about ``parameters`` (empty when they are valid)."""
    schema = parameter_schema(flow).model_dump_for_openapi()
    return [e.message for e in validate(parameters, schema, raise_on_error=False)]


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_deployment_in_prefect_yaml_passes_its_flows_parameter_schema_and_validation(spec):
    from flows.serve import local_parameters

    flow = flow_of(spec["entrypoint"])
    for parameters in (
        spec["parameters"],
        local_parameters(spec["parameters"]),
        local_parameters(spec["parameters"], True),
    ):
        assert schema_errors(flow, parameters) == [], (spec["name"], parameters)
        validated = flow.validate_parameters(parameters)
        for key, value in parameters.items():
            if key != "settings":
                assert validated[key] == value
    assert "settings" not in spec["parameters"], "prefect.yaml passes per-run parameters only; blocks hold the rest"


def test_the_checks_reject_what_the_old_signatures_took():
    """A check of the check: old loose parameters, unknown settings and wrong types fail, as they would on a run."""
    from prefect.exceptions import SignatureMismatchError

    insightflow = flow_of("flows/insightflow.py:insightflow")
    with pytest.raises(SignatureMismatchError, match="run_dbt"):
        insightflow.validate_parameters({"target": "prod", "run_dbt": False})
    assert schema_errors(insightflow, {"settings": {"no_such_setting": 1}})
    assert schema_errors(insightflow, {"target": "staging"})
    football = flow_of("flows/football.py:football")
    with pytest.raises(SignatureMismatchError, match="sample"):
        football.validate_parameters({"sample": True})
    assert schema_errors(football, {"settings": {"sample_matchday": "nine"}})


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_each_flow_takes_at_most_six_parameters_each_typed_with_a_local_default(entrypoint):
    flow = flow_of(entrypoint)
    schema = parameter_schema(flow)
    assert len(schema.properties) <= MAX_PARAMETERS, sorted(schema.properties)
    assert schema.required == [], "every parameter has a default that runs locally"
    assert flow.parameters.properties["target"]["default"] == "dev"
    assert all("type" in p or "$ref" in p or "anyOf" in p or "enum" in p for p in schema.properties.values())
    settings = flow.validate_parameters({})["settings"]
    assert settings.home is None and settings.sample is False


@pytest.mark.parametrize(
    ("entrypoint", "settings", "cause"),
    [
        ("flows/insightflow.py:insightflow", {"sample_faults": {"fuelprice": "html"}}, "set sample too"),
        (
            "flows/insightflow.py:insightflow",
            {"sample": True, "sample_faults": {"gdp": "html"}},
            "unknown dataset(s) gdp",
        ),
        ("flows/insightflow.py:insightflow", {"sample": True, "sample_release": -1}, "greater than or equal to 0"),
        ("flows/football.py:football", {"sample_matchday": 3}, "set sample too"),
        ("flows/football.py:football", {"lock_timeout_s": 0}, "greater than 0"),
    ],
)
def test_settings_that_do_not_go_together_fail_validation_with_the_cause(entrypoint, settings, cause):
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match=cause.replace("(", r"\(").replace(")", r"\)")):
        flow_of(entrypoint).validate_parameters({"settings": settings})
