{#
    One row per team per standings table per distinct snapshot: the flow lands a snapshot only when
    the table changed, so there is no row per tick. When each table was valid (first seen, last
    confirmed, superseded) is in fct_football_snapshots; docs/football.md shows "the table at time T".
    Incremental append of the staging rows loaded since the newest row here, so a run costs the
    same whatever the history holds. Tested incrementally on DuckDB and on fakesnow.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

with

standings as (
    select
        standing_id,
        snapshot_id,
        competition_code,
        competition_name,
        season_year,
        current_matchday,
        stage,
        table_type,
        group_name,
        position,
        team_id,
        team_name,
        played_games,
        won,
        draw,
        lost,
        points,
        goals_for,
        goals_against,
        goal_difference,
        fetched_at,
        loaded_at
    from {{ ref('stg_football__standings') }}
    {% if is_incremental() %}
    where {{ football_loaded_after(this) }}
    {% endif %}
),

final as (
    select * from standings
)

select * from final
