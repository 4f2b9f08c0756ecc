{#-
    Pearson correlation, over the months both are known, of a group's month-on-month growth with the
    month-on-month change in the average pump price. Null where either side never varied (RON95 was
    fixed for years) or fewer than two months overlap. Same-month only: no lagged effects.
-#}
with

fct_retail_sales_monthly as (

    select
        msic_group_code,
        month_start_date,
        sales_growth_mom_pct,
        volume_growth_mom_pct,
        ron95_change_mom_pct,
        ron97_change_mom_pct,
        diesel_change_mom_pct
    from {{ ref('fct_retail_sales_monthly') }}

),

dim_msic_group as (

    select
        msic_group_code,
        msic_group_description
    from {{ ref('dim_msic_group') }}

),

correlations_by_group as (

    select
        msic_group_code,
        min(month_start_date) as first_month_start_date,
        max(month_start_date) as last_month_start_date,
        count(
            case when sales_growth_mom_pct is not null and diesel_change_mom_pct is not null then 1 end
        ) as months_compared,
        count(
            case when ron95_change_mom_pct <> 0 or ron97_change_mom_pct <> 0 or diesel_change_mom_pct <> 0 then 1 end
        ) as months_with_fuel_price_change,
        round({{ correlation('sales_growth_mom_pct', 'ron95_change_mom_pct') }}, 4) as sales_growth_ron95_change_correlation,
        round({{ correlation('volume_growth_mom_pct', 'ron95_change_mom_pct') }}, 4) as volume_growth_ron95_change_correlation,
        round({{ correlation('sales_growth_mom_pct', 'ron97_change_mom_pct') }}, 4) as sales_growth_ron97_change_correlation,
        round({{ correlation('volume_growth_mom_pct', 'ron97_change_mom_pct') }}, 4) as volume_growth_ron97_change_correlation,
        round({{ correlation('sales_growth_mom_pct', 'diesel_change_mom_pct') }}, 4) as sales_growth_diesel_change_correlation,
        round({{ correlation('volume_growth_mom_pct', 'diesel_change_mom_pct') }}, 4) as volume_growth_diesel_change_correlation
    from fct_retail_sales_monthly
    group by 1

),

final as (

    select
        correlations_by_group.msic_group_code,
        dim_msic_group.msic_group_description,
        correlations_by_group.first_month_start_date,
        correlations_by_group.last_month_start_date,
        correlations_by_group.months_compared,
        correlations_by_group.months_with_fuel_price_change,
        correlations_by_group.sales_growth_ron95_change_correlation,
        correlations_by_group.volume_growth_ron95_change_correlation,
        correlations_by_group.sales_growth_ron97_change_correlation,
        correlations_by_group.volume_growth_ron97_change_correlation,
        correlations_by_group.sales_growth_diesel_change_correlation,
        correlations_by_group.volume_growth_diesel_change_correlation
    from correlations_by_group
    left join dim_msic_group
        on correlations_by_group.msic_group_code = dim_msic_group.msic_group_code

)

select * from final
