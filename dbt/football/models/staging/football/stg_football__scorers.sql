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
    from {{ source('football_raw', 'football_scorers') }}
    {% if is_incremental() %}
    where {{ football_loaded_after(this) }}
    {% endif %}
),

scorers_flattened as (
    select
        source.file_name,
        source.document,
        source.loaded_at,
        scorer.value as scorer
    from source,
        {{ football_flatten(football_json('source.document', 'scorers'), 'scorer') }}
),

renamed as (
    select
        -- ids
        {{ football_snapshot_id('file_name') }} as snapshot_id,
        {{ football_json_text('document', 'competition.code') }} as competition_code,
        cast(substr({{ football_json_text('document', 'season.startDate') }}, 1, 4) as integer) as season_year,
        cast({{ football_json_text('scorer', 'player.id') }} as integer) as player_id,
        cast({{ football_json_text('scorer', 'team.id') }} as integer) as team_id,

        -- dimensions
        {{ football_json_text('scorer', 'player.name') }} as player_name,
        {{ football_json_text('scorer', 'player.nationality') }} as player_nationality,
        {{ football_json_text('scorer', 'player.position') }} as player_position,
        {{ football_json_text('scorer', 'team.name') }} as team_name,

        -- measures
        cast({{ football_json_text('scorer', 'playedMatches') }} as integer) as played_matches,
        cast({{ football_json_text('scorer', 'goals') }} as integer) as goals,
        cast({{ football_json_text('scorer', 'assists') }} as integer) as assists,
        cast({{ football_json_text('scorer', 'penalties') }} as integer) as penalties,

        -- timestamps
        {{ football_fetched_at('file_name') }} as fetched_at,
        loaded_at
    from scorers_flattened
),

final as (
    select
        md5(concat_ws('|', snapshot_id, cast(player_id as varchar))) as scorer_id,
        *
    from renamed
)

select * from final
