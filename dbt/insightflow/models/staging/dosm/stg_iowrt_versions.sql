{#- Every landed version of the headline rows (tasks/insightflow/ingest/history.py), typed like stg_iowrt. -#}
with

iowrt_history as (

    select
        series,
        ymd_date,
        sales,
        volume,
        version_seen_at,
        version_source_modified_at
    from {{ source('dosm', 'iowrt_history') }}

),

final as (

    select
        -- dimensions
        cast(series as {{ dbt.type_string() }}) as series,

        -- dates
        cast(ymd_date as date) as month_start_date,

        -- measures: RM million and index points for 'abs', percent for the growth series
        cast(sales as {{ type_double() }}) as sales,
        cast(volume as {{ type_double() }}) as volume,

        -- timestamps, UTC
        cast(version_seen_at as {{ dbt.type_timestamp() }}) as version_seen_at,
        cast(version_source_modified_at as {{ dbt.type_timestamp() }}) as version_source_modified_at

    from iowrt_history

)

select * from final
