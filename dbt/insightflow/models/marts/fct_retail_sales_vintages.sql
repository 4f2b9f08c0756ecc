{#-
    Every published value of monthly sales and volume, with when the pipeline saw it and until when it
    was current: the "as known on date D" table. A vintage is current at D when
    seen_at <= D < coalesce(superseded_at, infinity); docs/revisions.md has the query and the macro
    retail_sales_monthly_as_of(D) returns fct_retail_sales_monthly as known on D.
-#}
with

int_retail_sales_vintages as (

    select
        month_start_date,
        msic_group_code,
        vintage_number,
        sales_myr_million,
        volume_index,
        previous_sales_myr_million,
        previous_volume_index,
        seen_at,
        published_at,
        superseded_at
    from {{ ref('int_retail_sales_vintages') }}

),

final as (

    select
        -- ids
        {{ date_key('month_start_date') }} as date_key,
        msic_group_code,
        vintage_number,

        -- dates
        month_start_date,

        -- measures as published in this vintage, and the change from the vintage before
        sales_myr_million,
        volume_index,
        previous_sales_myr_million,
        previous_volume_index,
        {{ percent_change('sales_myr_million', 'previous_sales_myr_million') }} as sales_revision_pct,
        {{ percent_change('volume_index', 'previous_volume_index') }} as volume_revision_pct,

        -- timestamps, UTC
        seen_at,
        published_at,
        superseded_at

    from int_retail_sales_vintages

)

select * from final
