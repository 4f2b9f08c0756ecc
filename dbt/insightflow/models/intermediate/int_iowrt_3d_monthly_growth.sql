{#-
    Growth is computed from the levels rather than taken from DOSM's growth_mom series, so it exists
    for every month with a level and the previous month's level, with full precision.
-#}
with

stg_dosm__iowrt_3d as (

    select
        msic_group_code,
        month_start_date,
        sales,
        volume
    from {{ ref('stg_dosm__iowrt_3d') }}
    where series = 'abs'

),

levels_joined_to_previous_month as (

    select
        monthly.msic_group_code,
        monthly.month_start_date,
        monthly.sales as sales_myr_million,
        monthly.volume as volume_index,
        {{ percent_change('monthly.sales', 'previous.sales') }} as sales_growth_mom_pct,
        {{ percent_change('monthly.volume', 'previous.volume') }} as volume_growth_mom_pct
    from stg_dosm__iowrt_3d as monthly
    left join stg_dosm__iowrt_3d as previous
        on monthly.msic_group_code = previous.msic_group_code
        and previous.month_start_date = {{ previous_month_start('monthly.month_start_date') }}

),

final as (

    select * from levels_joined_to_previous_month

)

select * from final
