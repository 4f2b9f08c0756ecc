-- The latest published value in fct_retail_sales_revisions must be the value the facts hold now:
-- fct_retail_sales_monthly for each MSIC group, fct_headline_vs_fuel_monthly for the headline, and
-- every fact row must have its revisions row. A failure means the lake's history and its current
-- partitions disagree (a version landed without its history, or the reverse) or an incremental run
-- of the fact kept a value DOSM has since revised.
with

fct_retail_sales_revisions as (

    select
        month_start_date,
        msic_group_code,
        latest_sales_myr_million,
        latest_volume_index
    from {{ ref('fct_retail_sales_revisions') }}

),

fct_retail_sales_monthly as (

    select
        month_start_date,
        msic_group_code,
        sales_myr_million,
        volume_index
    from {{ ref('fct_retail_sales_monthly') }}

),

fct_headline_vs_fuel_monthly as (

    select
        month_start_date,
        cast(null as {{ dbt.type_string() }}) as msic_group_code,
        sales_myr_million,
        volume_index
    from {{ ref('fct_headline_vs_fuel_monthly') }}

),

current_facts as (

    select * from fct_retail_sales_monthly
    union all
    select * from fct_headline_vs_fuel_monthly

),

final as (

    select
        coalesce(current_facts.month_start_date, fct_retail_sales_revisions.month_start_date) as month_start_date,
        coalesce(current_facts.msic_group_code, fct_retail_sales_revisions.msic_group_code) as msic_group_code,
        current_facts.sales_myr_million as current_sales_myr_million,
        fct_retail_sales_revisions.latest_sales_myr_million
    from current_facts
    full outer join fct_retail_sales_revisions
        on current_facts.month_start_date = fct_retail_sales_revisions.month_start_date
        and coalesce(current_facts.msic_group_code, '') = coalesce(fct_retail_sales_revisions.msic_group_code, '')
    where
        current_facts.month_start_date is null
        or fct_retail_sales_revisions.month_start_date is null
        or current_facts.sales_myr_million is distinct from fct_retail_sales_revisions.latest_sales_myr_million
        or current_facts.volume_index is distinct from fct_retail_sales_revisions.latest_volume_index

)

select * from final
