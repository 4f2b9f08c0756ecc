with

source as (
    select
        endpoint,
        competition_code,
        season_year,
        file_name,
        content_sha256,
        matchday,
        first_seen_at,
        last_confirmed_at,
        confirmations,
        loaded_at
    from {{ source('football_raw', 'football_snapshots') }}
),

renamed as (
    select
        -- ids
        {{ football_snapshot_id('file_name') }} as snapshot_id,
        endpoint,
        competition_code,
        cast(season_year as integer) as season_year,
        content_sha256,

        -- dimensions
        cast(matchday as integer) as matchday,

        -- measures
        cast(confirmations as integer) as confirmations,

        -- timestamps
        cast(first_seen_at as {{ dbt.type_timestamp() }}) as first_seen_at,
        cast(last_confirmed_at as {{ dbt.type_timestamp() }}) as last_confirmed_at,
        loaded_at
    from source
),

final as (
    select * from renamed
)

select * from final
