{#
    Incremental: a run reads only the staging rows loaded since the newest row here and replaces
    (delete+insert) the competitions and seasons they bring a newer snapshot for.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['competition_code', 'season_year'],
        on_schema_change='append_new_columns',
    )
}}

with

standings as (
    select
        snapshot_id,
        competition_code,
        competition_name,
        season_year,
        current_matchday,
        stage,
        group_name,
        position,
        team_id,
        team_name,
        team_tla,
        played_games,
        won,
        draw,
        lost,
        points,
        goals_for,
        goals_against,
        goal_difference,
        form,
        fetched_at,
        loaded_at
    from {{ ref('stg_football__standings') }}
    where table_type = 'TOTAL'
    {% if is_incremental() %}
        and {{ football_loaded_after(this) }}
    {% endif %}
),

latest_snapshots as (
    select
        competition_code,
        season_year,
        max(fetched_at) as fetched_at
    from standings
    group by 1, 2
),

standings_in_latest_snapshot as (
    select standings.*
    from standings
    inner join latest_snapshots
        on standings.competition_code = latest_snapshots.competition_code
        and standings.season_year = latest_snapshots.season_year
        and standings.fetched_at = latest_snapshots.fetched_at
),

final as (
    select
        md5(concat_ws(
            '|', competition_code, cast(season_year as varchar), coalesce(stage, ''),
            coalesce(group_name, ''), cast(team_id as varchar)
        )) as team_standing_id,
        *
    from standings_in_latest_snapshot
)

select * from final
