-- Monthly sales in the fact must equal the 'abs' rows of the staging model, month by month. A
-- difference means the fuel-price join fanned rows out or dropped them, or an incremental run left
-- stale rows for a month DOSM revised.
with

stg_dosm__iowrt_3d as (

    select
        month_start_date,
        sales
    from {{ ref('stg_dosm__iowrt_3d') }}
    where series = 'abs'

),

fct_retail_sales_monthly as (

    select
        month_start_date,
        sales_myr_million
    from {{ ref('fct_retail_sales_monthly') }}

),

staging_totals as (

    select
        month_start_date,
        count(*) as group_rows,
        sum(sales) as sales_myr_million
    from stg_dosm__iowrt_3d
    group by 1

),

fact_totals as (

    select
        month_start_date,
        count(*) as group_rows,
        sum(sales_myr_million) as sales_myr_million
    from fct_retail_sales_monthly
    group by 1

),

final as (

    select
        coalesce(staging_totals.month_start_date, fact_totals.month_start_date) as month_start_date,
        staging_totals.group_rows as staging_group_rows,
        fact_totals.group_rows as fact_group_rows,
        staging_totals.sales_myr_million as staging_sales_myr_million,
        fact_totals.sales_myr_million as fact_sales_myr_million
    from staging_totals
    full outer join fact_totals
        on staging_totals.month_start_date = fact_totals.month_start_date
    where
        staging_totals.month_start_date is null
        or fact_totals.month_start_date is null
        or staging_totals.group_rows <> fact_totals.group_rows
        or abs(staging_totals.sales_myr_million - fact_totals.sales_myr_million) > 0.001

)

select * from final
