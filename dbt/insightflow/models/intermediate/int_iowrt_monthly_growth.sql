{#- The headline series pivoted to one row per month: levels, month-on-month growth from the levels, and DOSM's year-on-year growth. -#}
with

stg_dosm__iowrt as (

    select
        series,
        month_start_date,
        sales,
        volume,
        volume_sa
    from {{ ref('stg_dosm__iowrt') }}

),

series_pivoted_to_columns as (

    select
        month_start_date,
        max(case when series = 'abs' then sales end) as sales_myr_million,
        max(case when series = 'abs' then volume end) as volume_index,
        max(case when series = 'abs' then volume_sa end) as volume_sa_index,
        max(case when series = 'growth_yoy' then sales end) as sales_growth_yoy_pct,
        max(case when series = 'growth_yoy' then volume end) as volume_growth_yoy_pct
    from stg_dosm__iowrt
    group by 1

),

levels_joined_to_previous_month as (

    select
        monthly.month_start_date,
        monthly.sales_myr_million,
        monthly.volume_index,
        monthly.volume_sa_index,
        {{ percent_change('monthly.sales_myr_million', 'previous.sales_myr_million') }} as sales_growth_mom_pct,
        {{ percent_change('monthly.volume_index', 'previous.volume_index') }} as volume_growth_mom_pct,
        {{ percent_change('monthly.volume_sa_index', 'previous.volume_sa_index') }} as volume_sa_growth_mom_pct,
        monthly.sales_growth_yoy_pct,
        monthly.volume_growth_yoy_pct
    from series_pivoted_to_columns as monthly
    left join series_pivoted_to_columns as previous
        on previous.month_start_date = {{ previous_month_start('monthly.month_start_date') }}

),

final as (

    select * from levels_joined_to_previous_month
    -- a month with only growth rows (levels not yet published) is not a headline month
    where sales_myr_million is not null

)

select * from final
