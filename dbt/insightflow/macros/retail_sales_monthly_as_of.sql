{#-
    fct_retail_sales_monthly as the pipeline knew it at `as_of` (a UTC timestamp literal such as
    '2025-10-01 00:00:00'): each MSIC group's sales and volume from the vintage current then, the
    month-on-month growth recomputed from those values, the fuel prices joined as the fact joins them.
    Months first seen after `as_of` are absent. Fuel prices are weekly settings, not revised figures,
    so they come from the current model. Example (docs/revisions.md):
        dbt show --inline "{{ retail_sales_monthly_as_of('2025-10-01 00:00:00') }}" --limit 20
-#}
{% macro retail_sales_monthly_as_of(as_of) -%}
with

vintages_current_at_as_of as (

    select
        month_start_date,
        msic_group_code,
        sales_myr_million,
        volume_index,
        seen_at
    from {{ ref('fct_retail_sales_vintages') }}
    where
        msic_group_code is not null
        and seen_at <= cast('{{ as_of }}' as timestamp)
        and (superseded_at is null or superseded_at > cast('{{ as_of }}' as timestamp))

),

growth_as_known as (

    select
        monthly.month_start_date,
        monthly.msic_group_code,
        monthly.sales_myr_million,
        monthly.volume_index,
        {{ percent_change('monthly.sales_myr_million', 'previous.sales_myr_million') }} as sales_growth_mom_pct,
        {{ percent_change('monthly.volume_index', 'previous.volume_index') }} as volume_growth_mom_pct,
        monthly.seen_at as vintage_seen_at
    from vintages_current_at_as_of as monthly
    left join vintages_current_at_as_of as previous
        on monthly.msic_group_code = previous.msic_group_code
        and previous.month_start_date = {{ previous_month_start('monthly.month_start_date') }}

)

select
    {{ date_key('growth_as_known.month_start_date') }} as date_key,
    growth_as_known.msic_group_code,
    growth_as_known.month_start_date,
    growth_as_known.sales_myr_million,
    growth_as_known.volume_index,
    growth_as_known.sales_growth_mom_pct,
    growth_as_known.volume_growth_mom_pct,
    fuel.avg_ron95_myr_per_litre,
    fuel.avg_ron97_myr_per_litre,
    fuel.avg_diesel_myr_per_litre,
    fuel.avg_diesel_eastmsia_myr_per_litre,
    fuel.ron95_change_mom_pct,
    fuel.ron97_change_mom_pct,
    fuel.diesel_change_mom_pct,
    fuel.diesel_eastmsia_change_mom_pct,
    coalesce(fuel.price_weeks, 0) as fuel_price_weeks,
    growth_as_known.vintage_seen_at
from growth_as_known
left join {{ ref('int_fuelprice_monthly_changes') }} as fuel
    on growth_as_known.month_start_date = fuel.month_start_date
order by growth_as_known.month_start_date, growth_as_known.msic_group_code
{%- endmacro %}
