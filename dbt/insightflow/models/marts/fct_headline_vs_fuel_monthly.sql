with

int_iowrt_monthly_growth as (

    select
        month_start_date,
        sales_myr_million,
        volume_index,
        volume_sa_index,
        sales_growth_mom_pct,
        volume_growth_mom_pct,
        volume_sa_growth_mom_pct,
        sales_growth_yoy_pct,
        volume_growth_yoy_pct
    from {{ ref('int_iowrt_monthly_growth') }}

),

int_fuelprice_monthly_changes as (

    {{ import_monthly_fuel_prices() }}

),

headline_joined_to_fuel_prices as (

    select
        {{ date_key('int_iowrt_monthly_growth.month_start_date') }} as date_key,
        int_iowrt_monthly_growth.month_start_date,
        int_iowrt_monthly_growth.sales_myr_million,
        int_iowrt_monthly_growth.volume_index,
        int_iowrt_monthly_growth.volume_sa_index,
        int_iowrt_monthly_growth.sales_growth_mom_pct,
        int_iowrt_monthly_growth.volume_growth_mom_pct,
        int_iowrt_monthly_growth.volume_sa_growth_mom_pct,
        int_iowrt_monthly_growth.sales_growth_yoy_pct,
        int_iowrt_monthly_growth.volume_growth_yoy_pct,
        {{ monthly_fuel_prices() }}
    from int_iowrt_monthly_growth
    left join int_fuelprice_monthly_changes
        on int_iowrt_monthly_growth.month_start_date = int_fuelprice_monthly_changes.month_start_date

),

final as (

    select * from headline_joined_to_fuel_prices

)

select * from final
