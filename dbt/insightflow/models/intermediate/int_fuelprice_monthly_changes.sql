{#- Joined to the previous calendar month, not lag(): a month with no announcements leaves a gap, not a shift. -#}
with

int_fuelprice_monthly as (

    select
        month_start_date,
        avg_ron95_myr_per_litre,
        avg_ron97_myr_per_litre,
        avg_diesel_myr_per_litre,
        avg_diesel_eastmsia_myr_per_litre,
        price_weeks
    from {{ ref('int_fuelprice_monthly') }}

),

monthly_joined_to_previous_month as (

    select
        monthly.month_start_date,
        monthly.avg_ron95_myr_per_litre,
        monthly.avg_ron97_myr_per_litre,
        monthly.avg_diesel_myr_per_litre,
        monthly.avg_diesel_eastmsia_myr_per_litre,
        monthly.price_weeks,
        {{ percent_change('monthly.avg_ron95_myr_per_litre', 'previous.avg_ron95_myr_per_litre') }}
            as ron95_change_mom_pct,
        {{ percent_change('monthly.avg_ron97_myr_per_litre', 'previous.avg_ron97_myr_per_litre') }}
            as ron97_change_mom_pct,
        {{ percent_change('monthly.avg_diesel_myr_per_litre', 'previous.avg_diesel_myr_per_litre') }}
            as diesel_change_mom_pct,
        {{ percent_change('monthly.avg_diesel_eastmsia_myr_per_litre', 'previous.avg_diesel_eastmsia_myr_per_litre') }}
            as diesel_eastmsia_change_mom_pct
    from int_fuelprice_monthly as monthly
    left join int_fuelprice_monthly as previous
        on previous.month_start_date = {{ previous_month_start('monthly.month_start_date') }}

),

final as (

    select * from monthly_joined_to_previous_month

)

select * from final
