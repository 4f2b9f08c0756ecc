with

iowrt as (

    select
        series,
        ymd_date,
        sales,
        volume,
        volume_sa
    from {{ source('dosm', 'iowrt') }}

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
        cast(volume_sa as {{ type_double() }}) as volume_sa

    from iowrt

)

select * from final
