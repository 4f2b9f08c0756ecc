{#-
    A plain mean of the weekly levels dated in the month, not weighted by the days each price was in
    force: prices change rarely, and late 2018 had monthly announcements (one row in the month).
-#}
with

stg_datagovmy__fuelprice as (

    select
        price_date,
        ron95_myr_per_litre,
        ron97_myr_per_litre,
        diesel_myr_per_litre,
        diesel_eastmsia_myr_per_litre
    from {{ ref('stg_datagovmy__fuelprice') }}

),

prices_assigned_to_months as (

    select
        {{ month_start('price_date') }} as month_start_date,
        ron95_myr_per_litre,
        ron97_myr_per_litre,
        diesel_myr_per_litre,
        diesel_eastmsia_myr_per_litre
    from stg_datagovmy__fuelprice

),

final as (

    select
        month_start_date,
        round(avg(ron95_myr_per_litre), 2) as avg_ron95_myr_per_litre,
        round(avg(ron97_myr_per_litre), 2) as avg_ron97_myr_per_litre,
        round(avg(diesel_myr_per_litre), 2) as avg_diesel_myr_per_litre,
        round(avg(diesel_eastmsia_myr_per_litre), 2) as avg_diesel_eastmsia_myr_per_litre,
        count(*) as price_weeks
    from prices_assigned_to_months
    group by 1

)

select * from final
