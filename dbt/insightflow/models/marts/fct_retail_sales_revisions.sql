{#-
    First and latest published values of each month's sales and volume, and how often they changed.
    revision_pct is the change in sales from the first to the latest value: 0, with equal first and
    latest values, for a month never revised, whose last_revised_at is null. Only months and groups the source still
    publishes: a month the publisher dropped keeps its vintages in fct_retail_sales_vintages.
-#}
with

int_retail_sales_vintages as (

    select
        month_start_date,
        msic_group_code,
        vintage_number,
        sales_myr_million,
        volume_index,
        seen_at,
        published_at
    from {{ ref('int_retail_sales_vintages') }}

),

stg_dosm__iowrt as (

    select month_start_date
    from {{ ref('stg_dosm__iowrt') }}
    where series = 'abs' and sales is not null

),

stg_dosm__iowrt_3d as (

    select
        msic_group_code,
        month_start_date
    from {{ ref('stg_dosm__iowrt_3d') }}
    where series = 'abs' and sales is not null

),

currently_published as (

    select
        month_start_date,
        cast(null as {{ dbt.type_string() }}) as msic_group_code
    from stg_dosm__iowrt

    union all

    select
        month_start_date,
        msic_group_code
    from stg_dosm__iowrt_3d

),

vintages_summarised as (

    select
        month_start_date,
        msic_group_code,
        max(vintage_number) as vintages,
        max(case when vintage_number = 1 then sales_myr_million end) as first_sales_myr_million,
        max(case when vintage_number = 1 then volume_index end) as first_volume_index,
        max(case when vintage_number = 1 then published_at end) as first_published_at,
        max(case when vintage_number = 1 then seen_at end) as first_seen_at
    from int_retail_sales_vintages
    group by 1, 2

),

latest_vintages as (

    select
        vintages_summarised.month_start_date,
        vintages_summarised.msic_group_code,
        vintages_summarised.vintages,
        vintages_summarised.first_sales_myr_million,
        vintages_summarised.first_volume_index,
        vintages_summarised.first_published_at,
        vintages_summarised.first_seen_at,
        int_retail_sales_vintages.sales_myr_million as latest_sales_myr_million,
        int_retail_sales_vintages.volume_index as latest_volume_index,
        int_retail_sales_vintages.published_at as latest_published_at,
        int_retail_sales_vintages.seen_at as latest_seen_at
    from vintages_summarised
    inner join int_retail_sales_vintages
        on vintages_summarised.month_start_date = int_retail_sales_vintages.month_start_date
        and vintages_summarised.vintages = int_retail_sales_vintages.vintage_number
        and coalesce(vintages_summarised.msic_group_code, '') = coalesce(int_retail_sales_vintages.msic_group_code, '')
    inner join currently_published
        on vintages_summarised.month_start_date = currently_published.month_start_date
        and coalesce(vintages_summarised.msic_group_code, '') = coalesce(currently_published.msic_group_code, '')

),

final as (

    select
        -- ids
        {{ date_key('month_start_date') }} as date_key,
        msic_group_code,

        -- dates
        month_start_date,

        -- first and latest published values
        first_sales_myr_million,
        latest_sales_myr_million,
        {{ percent_change('latest_sales_myr_million', 'first_sales_myr_million') }} as revision_pct,
        first_volume_index,
        latest_volume_index,
        {{ percent_change('latest_volume_index', 'first_volume_index') }} as volume_revision_pct,
        vintages - 1 as revision_count,

        -- timestamps, UTC: published = the source's Last-Modified (or, without one, when first seen)
        first_published_at,
        first_seen_at,
        case when vintages > 1 then latest_published_at end as last_revised_at,
        case when vintages > 1 then latest_seen_at end as last_revised_seen_at

    from latest_vintages

)

select * from final
