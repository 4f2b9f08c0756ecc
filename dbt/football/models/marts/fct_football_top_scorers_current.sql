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

scorers as (
    select
        snapshot_id,
        competition_code,
        season_year,
        player_id,
        player_name,
        player_nationality,
        team_id,
        team_name,
        played_matches,
        goals,
        assists,
        penalties,
        fetched_at,
        loaded_at
    from {{ ref('stg_football__scorers') }}
    {% if is_incremental() %}
    where {{ football_loaded_after(this) }}
    {% endif %}
),

latest_snapshots as (
    select
        competition_code,
        season_year,
        max(fetched_at) as fetched_at
    from scorers
    group by 1, 2
),

scorers_in_latest_snapshot as (
    select scorers.*
    from scorers
    inner join latest_snapshots
        on scorers.competition_code = latest_snapshots.competition_code
        and scorers.season_year = latest_snapshots.season_year
        and scorers.fetched_at = latest_snapshots.fetched_at
),

final as (
    select
        md5(concat_ws('|', competition_code, cast(season_year as varchar), cast(player_id as varchar))) as top_scorer_id,
        rank() over (partition by competition_code, season_year order by goals desc) as scorer_rank,
        *,
        cast(goals as double) / nullif(played_matches, 0) as goals_per_game
    from scorers_in_latest_snapshot
)

select * from final
