-- A failure means a team's top scorer has more goals than the team scored: the scorers and
-- standings snapshots joined on the wrong team, competition or season.
select
    team_season_id,
    top_scorer_goals,
    goals_for
from {{ ref('fct_football_team_top_scorers') }}
where top_scorer_goals > goals_for
