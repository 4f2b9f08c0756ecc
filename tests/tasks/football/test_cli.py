"""``python flows/football.py``'s options: each flag reaches the flow as the parameter or setting it names."""

from __future__ import annotations

from datetime import date

import pytest

pytestmark = pytest.mark.unit


def parameters(argv: list[str]) -> dict:
    from tasks.football import cli

    return cli.parameters(cli.parser().parse_args(argv))


def test_every_flag_maps_to_its_parameter_or_setting_and_validates_against_the_flow():
    from flows.football import football

    chosen = parameters(
        [
            *("--sample", "--sample-matchday", "9", "--competitions", "PL", "BL1", "--season", "2024"),
            *("--home", "/srv/fb", "--target", "dev", "--no-dbt", "--full-check", "--full-refresh"),
            *("--freshness-as-of", "2025-03-01", "--stale-after-days", "10"),
        ]
    )
    settings = chosen.pop("settings")
    assert chosen == {
        "competitions": ["PL", "BL1"],
        "season": 2024,
        "target": "dev",
        "full_check": True,
        "full_refresh": True,
    }
    assert (settings.home, settings.sample, settings.sample_matchday, settings.run_dbt_build) == (
        "/srv/fb",
        True,
        9,
        False,
    )
    assert (settings.freshness_as_of, settings.stale_after_days) == (date(2025, 3, 1), 10)
    assert football.validate_parameters({**chosen, "settings": settings})["settings"] == settings


def test_a_matchday_without_the_sample_exits_with_a_usage_error(capsys):
    from tasks.football import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(lambda **_: pytest.fail("the flow must not start"), ["--sample-matchday", "3"])
    assert exit_.value.code == 2
    assert "sample_matchday applies to the offline sample" in capsys.readouterr().err
