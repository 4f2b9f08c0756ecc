with

standings as (
    select
        competition_code,
        season_year,
        stage,
        group_name,
        team_id,
        team_name,
        position,
        played_games,
        points,
        goals_for
    from {{ ref('fct_football_standings_current') }}
),

top_scorers as (
    select
        competition_code,
        season_year,
        team_id,
        player_id,
        player_name,
        played_matches,
        goals
    from {{ ref('fct_football_top_scorers_current') }}
),

{# A team in several tables of one season (cup groups, league phase) counts where it played most. #}
team_tables_ranked as (
    select
        *,
        row_number() over (
            partition by competition_code, season_year, team_id
            order by played_games desc, stage asc, group_name asc
        ) as table_rank
    from standings
),

team_scorers_ranked as (
    select
        *,
        row_number() over (
            partition by competition_code, season_year, team_id
            order by goals desc, played_matches asc, player_name asc, player_id asc
        ) as team_scorer_rank
    from top_scorers
),

teams_joined_to_top_scorers as (
    select
        team_tables_ranked.competition_code,
        team_tables_ranked.season_year,
        team_tables_ranked.team_id,
        team_tables_ranked.team_name,
        team_tables_ranked.stage,
        team_tables_ranked.group_name,
        team_tables_ranked.position,
        team_tables_ranked.played_games,
        team_tables_ranked.points,
        team_tables_ranked.goals_for,
        cast(team_tables_ranked.goals_for as double) / nullif(team_tables_ranked.played_games, 0) as goals_per_game,
        team_scorers_ranked.player_id as top_scorer_player_id,
        team_scorers_ranked.player_name as top_scorer_name,
        team_scorers_ranked.goals as top_scorer_goals,
        cast(team_scorers_ranked.goals as double) / nullif(team_tables_ranked.goals_for, 0) as top_scorer_goal_share,
        cast(team_scorers_ranked.goals as double) / nullif(team_scorers_ranked.played_matches, 0) as top_scorer_goals_per_game
    from team_tables_ranked
    left join team_scorers_ranked
        on team_tables_ranked.competition_code = team_scorers_ranked.competition_code
        and team_tables_ranked.season_year = team_scorers_ranked.season_year
        and team_tables_ranked.team_id = team_scorers_ranked.team_id
        and team_scorers_ranked.team_scorer_rank = 1
    where team_tables_ranked.table_rank = 1
),

final as (
    select
        md5(concat_ws('|', competition_code, cast(season_year as varchar), cast(team_id as varchar))) as team_season_id,
        *
    from teams_joined_to_top_scorers
)

select * from final
