{#-
    The monthly fuel prices a mart carries beside its own measures, from int_fuelprice_monthly_changes:
    both facts (fct_retail_sales_monthly, fct_headline_vs_fuel_monthly) left-join them on the month and
    take the same columns, listed here once.
-#}
{% macro monthly_fuel_price_columns() -%}
    {{ return([
        'avg_ron95_myr_per_litre',
        'avg_ron97_myr_per_litre',
        'avg_diesel_myr_per_litre',
        'avg_diesel_eastmsia_myr_per_litre',
        'ron95_change_mom_pct',
        'ron97_change_mom_pct',
        'diesel_change_mom_pct',
        'diesel_eastmsia_change_mom_pct',
    ]) }}
{%- endmacro %}

{#- The import CTE's body: the month, the prices and the number of weekly announcements averaged. -#}
{% macro import_monthly_fuel_prices() -%}
    select
        month_start_date,
        {%- for column in monthly_fuel_price_columns() %}
        {{ column }},
        {%- endfor %}
        price_weeks
    from {{ ref('int_fuelprice_monthly_changes') }}
{%- endmacro %}

{#- The joined columns, qualified by the import CTE; a month without prices has 0 weeks, not null. -#}
{% macro monthly_fuel_prices(relation='int_fuelprice_monthly_changes') -%}
    {%- for column in monthly_fuel_price_columns() -%}
        {{ relation }}.{{ column }},
        {% endfor -%}
    coalesce({{ relation }}.price_weeks, 0) as fuel_price_weeks
{%- endmacro %}
