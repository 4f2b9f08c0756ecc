with

iowrt_3d as (

    select
        series,
        ymd_date,
        group_code,
        sales,
        volume
    from {{ source('dosm', 'iowrt_3d') }}

),

final as (

    select
        -- ids
        cast(group_code as {{ dbt.type_string() }}) as msic_group_code,

        -- dimensions
        cast(series as {{ dbt.type_string() }}) as series,

        -- dates
        cast(ymd_date as date) as month_start_date,

        -- measures: RM million and index points for 'abs', percent for the growth series
        cast(sales as {{ type_double() }}) as sales,
        cast(volume as {{ type_double() }}) as volume

    from iowrt_3d

)

select * from final
