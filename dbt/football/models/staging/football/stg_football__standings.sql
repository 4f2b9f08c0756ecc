{#
    Incremental, an exception to staging's views: flattening every snapshot's JSON on every tick
    would cost more as the history grows. Each run reads only the raw rows loaded after the newest
    row already here; the filter applies to the raw table, before anything is flattened.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

with

source as (
    select
        file_name,
        document,
        loaded_at
    from {{ source('football_raw', 'football_standings') }}
    {% if is_incremental() %}
    where {{ football_loaded_after(this) }}
    {% endif %}
),

team_rows_flattened as (
    select
        source.file_name,
        source.document,
        source.loaded_at,
        standing.value as standing,
        team_row.value as team_row
    from source,
        {{ football_flatten(football_json('source.document', 'standings'), 'standing') }},
        {{ football_flatten(football_json('standing.value', 'table'), 'team_row') }}
),

renamed as (
    select
        -- ids
        {{ football_snapshot_id('file_name') }} as snapshot_id,
        {{ football_json_text('document', 'competition.code') }} as competition_code,
        cast(substr({{ football_json_text('document', 'season.startDate') }}, 1, 4) as integer) as season_year,
        cast({{ football_json_text('team_row', 'team.id') }} as integer) as team_id,

        -- dimensions
        {{ football_json_text('document', 'competition.name') }} as competition_name,
        cast({{ football_json_text('document', 'season.startDate') }} as date) as season_start_date,
        cast({{ football_json_text('document', 'season.endDate') }} as date) as season_end_date,
        cast({{ football_json_text('document', 'season.currentMatchday') }} as integer) as current_matchday,
        {{ football_json_text('standing', 'stage') }} as stage,
        {{ football_json_text('standing', 'type') }} as table_type,
        {{ football_json_text('standing', 'group') }} as group_name,
        cast({{ football_json_text('team_row', 'position') }} as integer) as position,
        {{ football_json_text('team_row', 'team.name') }} as team_name,
        {{ football_json_text('team_row', 'team.shortName') }} as team_short_name,
        {{ football_json_text('team_row', 'team.tla') }} as team_tla,
        {{ football_json_text('team_row', 'form') }} as form,

        -- measures
        cast({{ football_json_text('team_row', 'playedGames') }} as integer) as played_games,
        cast({{ football_json_text('team_row', 'won') }} as integer) as won,
        cast({{ football_json_text('team_row', 'draw') }} as integer) as draw,
        cast({{ football_json_text('team_row', 'lost') }} as integer) as lost,
        cast({{ football_json_text('team_row', 'points') }} as integer) as points,
        cast({{ football_json_text('team_row', 'goalsFor') }} as integer) as goals_for,
        cast({{ football_json_text('team_row', 'goalsAgainst') }} as integer) as goals_against,
        cast({{ football_json_text('team_row', 'goalDifference') }} as integer) as goal_difference,

        -- timestamps
        {{ football_fetched_at('file_name') }} as fetched_at,
        loaded_at
    from team_rows_flattened
),

final as (
    select
        md5(concat_ws(
            '|', snapshot_id, coalesce(stage, ''), coalesce(table_type, ''), coalesce(group_name, ''),
            cast(team_id as varchar)
        )) as standing_id,
        *
    from renamed
)

select * from final
