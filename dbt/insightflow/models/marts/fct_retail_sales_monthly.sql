{#-
    Incremental: each run rebuilds the latest `retail_sales_lookback_months` months, because DOSM
    revises recent months when it publishes the next. Keyed on the month, so a rebuilt month replaces
    every row of that month: delete+insert on DuckDB (the adapter default with a unique_key), and
    insert_overwrite of the year/month partitions on Athena (its default for partitioned Hive tables).
    A new month of data therefore appends one month of rows and refreshes the few before it.
-#}
{{
    config(
        materialized='incremental',
        unique_key='month_start_date',
        partitioned_by=table_partitions(['year', 'month']),
        on_schema_change='append_new_columns',
    )
}}

with

int_iowrt_3d_monthly_growth as (

    select
        msic_group_code,
        month_start_date,
        sales_myr_million,
        volume_index,
        sales_growth_mom_pct,
        volume_growth_mom_pct
    from {{ ref('int_iowrt_3d_monthly_growth') }}
    {% if is_incremental() -%}
    where month_start_date >= (
        select {{ dbt.dateadd('month', -var('retail_sales_lookback_months'), 'max(month_start_date)') }}
        from {{ this }}
    )
    {%- endif %}

),

int_fuelprice_monthly_changes as (

    {{ import_monthly_fuel_prices() }}

),

sales_joined_to_fuel_prices as (

    select
        int_iowrt_3d_monthly_growth.month_start_date,
        int_iowrt_3d_monthly_growth.msic_group_code,
        int_iowrt_3d_monthly_growth.sales_myr_million,
        int_iowrt_3d_monthly_growth.volume_index,
        int_iowrt_3d_monthly_growth.sales_growth_mom_pct,
        int_iowrt_3d_monthly_growth.volume_growth_mom_pct,
        {{ monthly_fuel_prices() }}
    from int_iowrt_3d_monthly_growth
    left join int_fuelprice_monthly_changes
        on int_iowrt_3d_monthly_growth.month_start_date = int_fuelprice_monthly_changes.month_start_date

),

final as (

    select
        -- ids
        {{ dbt.concat([
            "cast(" ~ date_key('month_start_date') ~ " as " ~ dbt.type_string() ~ ")",
            "'-'",
            "msic_group_code",
        ]) }} as retail_sales_monthly_id,
        {{ date_key('month_start_date') }} as date_key,
        msic_group_code,

        -- dates
        month_start_date,

        -- retail trade
        sales_myr_million,
        volume_index,
        sales_growth_mom_pct,
        volume_growth_mom_pct,

        -- fuel prices, monthly means of the weekly levels
        avg_ron95_myr_per_litre,
        avg_ron97_myr_per_litre,
        avg_diesel_myr_per_litre,
        avg_diesel_eastmsia_myr_per_litre,
        ron95_change_mom_pct,
        ron97_change_mom_pct,
        diesel_change_mom_pct,
        diesel_eastmsia_change_mom_pct,
        fuel_price_weeks,

        -- partition columns, last as Athena requires
        cast(extract(year from month_start_date) as integer) as year,
        cast(extract(month from month_start_date) as integer) as month

    from sales_joined_to_fuel_prices

)

select * from final
