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

    select
        month_start_date,
        avg_ron95_myr_per_litre,
        avg_ron97_myr_per_litre,
        avg_diesel_myr_per_litre,
        avg_diesel_eastmsia_myr_per_litre,
        ron95_change_mom_pct,
        ron97_change_mom_pct,
        diesel_change_mom_pct,
        diesel_eastmsia_change_mom_pct,
        price_weeks
    from {{ ref('int_fuelprice_monthly_changes') }}

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
        int_fuelprice_monthly_changes.avg_ron95_myr_per_litre,
        int_fuelprice_monthly_changes.avg_ron97_myr_per_litre,
        int_fuelprice_monthly_changes.avg_diesel_myr_per_litre,
        int_fuelprice_monthly_changes.avg_diesel_eastmsia_myr_per_litre,
        int_fuelprice_monthly_changes.ron95_change_mom_pct,
        int_fuelprice_monthly_changes.ron97_change_mom_pct,
        int_fuelprice_monthly_changes.diesel_change_mom_pct,
        int_fuelprice_monthly_changes.diesel_eastmsia_change_mom_pct,
        coalesce(int_fuelprice_monthly_changes.price_weeks, 0) as fuel_price_weeks
    from int_iowrt_monthly_growth
    left join int_fuelprice_monthly_changes
        on int_iowrt_monthly_growth.month_start_date = int_fuelprice_monthly_changes.month_start_date

),

final as (

    select * from headline_joined_to_fuel_prices

)

select * from final
