-- A monthly average outside the range of that month's weekly prices means weeks were assigned to
-- the wrong month or counted twice. Rounding to 2 dp moves an average by at most 0.005.
with

stg_datagovmy__fuelprice as (

    select
        {{ month_start('price_date') }} as month_start_date,
        ron95_myr_per_litre,
        diesel_myr_per_litre
    from {{ ref('stg_datagovmy__fuelprice') }}

),

int_fuelprice_monthly as (

    select
        month_start_date,
        avg_ron95_myr_per_litre,
        avg_diesel_myr_per_litre
    from {{ ref('int_fuelprice_monthly') }}

),

weekly_ranges as (

    select
        month_start_date,
        min(ron95_myr_per_litre) as min_ron95,
        max(ron95_myr_per_litre) as max_ron95,
        min(diesel_myr_per_litre) as min_diesel,
        max(diesel_myr_per_litre) as max_diesel
    from stg_datagovmy__fuelprice
    group by 1

),

final as (

    select
        int_fuelprice_monthly.month_start_date,
        int_fuelprice_monthly.avg_ron95_myr_per_litre,
        weekly_ranges.min_ron95,
        weekly_ranges.max_ron95,
        int_fuelprice_monthly.avg_diesel_myr_per_litre,
        weekly_ranges.min_diesel,
        weekly_ranges.max_diesel
    from int_fuelprice_monthly
    left join weekly_ranges
        on int_fuelprice_monthly.month_start_date = weekly_ranges.month_start_date
    where
        weekly_ranges.month_start_date is null
        or int_fuelprice_monthly.avg_ron95_myr_per_litre < weekly_ranges.min_ron95 - 0.005
        or int_fuelprice_monthly.avg_ron95_myr_per_litre > weekly_ranges.max_ron95 + 0.005
        or int_fuelprice_monthly.avg_diesel_myr_per_litre < weekly_ranges.min_diesel - 0.005
        or int_fuelprice_monthly.avg_diesel_myr_per_litre > weekly_ranges.max_diesel + 0.005

)

select * from final
