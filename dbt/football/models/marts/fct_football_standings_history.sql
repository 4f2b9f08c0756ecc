{#
    Incremental: each run appends only snapshots not yet in the table, so history survives even if
    raw rows are archived. Tested on DuckDB (fakesnow cannot run a second incremental pass).
#}
{{
    config(
        materialized='incremental',
        unique_key='standing_id',
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
        fetched_at
    from {{ ref('stg_football__standings') }}
    {% if is_incremental() %}
    where snapshot_id not in (select distinct snapshot_id from {{ this }})
    {% endif %}
),

final as (
    select * from standings
)

select * from final
