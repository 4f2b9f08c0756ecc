"""``python flows/insightflow.py``'s options: each README flag reaches the flow as the parameter or setting it names."""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit

FAULTS = ("html", "5xx")


def parameters(argv: list[str]) -> dict:
    from tasks.insightflow import cli

    return cli.parameters(cli.parser(FAULTS).parse_args(argv))


def test_every_flag_maps_to_its_parameter_or_setting_and_validates_against_the_flow():
    from flows.insightflow import insightflow

    chosen = parameters(
        [
            *("--sample", "--sample-fault", "fuelprice=html", "--sample-release", "2"),
            *("--datasets", "iowrt", "fuelprice", "--home", "/srv/if", "--target", "dev"),
            *("--full-refresh", "--no-dbt", "--fast-dbt", "--freshness-as-of", "2025-12-01"),
        ]
    )
    settings = chosen.pop("settings")
    assert chosen == {
        "datasets": ["iowrt", "fuelprice"],
        "target": "dev",
        "full_refresh": True,
        "freshness_as_of": date(2025, 12, 1),
    }
    assert (settings.home, settings.sample, settings.sample_faults, settings.sample_release) == (
        "/srv/if",
        True,
        {"fuelprice": "html"},
        2,
    )
    assert (settings.run_dbt, settings.dbt_node_tasks) == (False, False)
    assert insightflow.validate_parameters({**chosen, "settings": settings})["settings"] == settings


def test_no_flags_means_the_flows_defaults():
    from flows.insightflow import insightflow

    assert parameters([]) == insightflow.validate_parameters({"datasets": None, "freshness_as_of": None})


def test_every_flag_in_readmes_command_line_is_accepted():
    from tasks.insightflow import cli

    readme = (REPO_ROOT / "README.md").read_text()
    line = readme[readme.index("Command line: `python flows/insightflow.py") :].split("`.", 1)[0]
    flags = set(re.findall(r"--[a-z-]+", line))
    assert {"--sample", "--datasets", "--home", "--target", "--no-dbt", "--freshness-as-of"} <= flags
    known = {option for action in cli.parser(FAULTS)._actions for option in action.option_strings}
    assert flags <= known, flags - known


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--sample-fault", "fuelprice=html"], "--sample-fault needs --sample"),
        (["--sample-release", "1"], "--sample-release needs --sample"),
        (["--sample", "--sample-fault", "gdp=html"], "DATASET in"),
        (["--sample", "--sample-fault", "fuelprice=melt"], "FAULT in html, 5xx"),
    ],
)
def test_options_that_do_not_go_together_exit_with_a_usage_error(argv, says, capsys):
    from tasks.insightflow import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(lambda **_: pytest.fail("the flow must not start"), argv, faults=FAULTS)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
