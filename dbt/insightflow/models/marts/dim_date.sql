with

stg_dosm__iowrt as (

    select month_start_date from {{ ref('stg_dosm__iowrt') }}

),

stg_dosm__iowrt_3d as (

    select month_start_date from {{ ref('stg_dosm__iowrt_3d') }}

),

int_fuelprice_monthly as (

    select month_start_date from {{ ref('int_fuelprice_monthly') }}

),

fact_months as (

    select month_start_date from stg_dosm__iowrt
    union all
    select month_start_date from stg_dosm__iowrt_3d
    union all
    select month_start_date from int_fuelprice_monthly

),

fact_month_bounds as (

    select
        min(month_start_date) as first_month_start_date,
        max(month_start_date) as last_month_start_date
    from fact_months

),

months as (

    {{ month_spine('fact_month_bounds', 'first_month_start_date', 'last_month_start_date') }}

),

final as (

    select
        -- ids
        {{ date_key('month_start_date') }} as date_key,

        -- dates
        month_start_date,
        cast({{ dbt.last_day('month_start_date', 'month') }} as date) as month_end_date,

        -- calendar attributes
        cast(extract(year from month_start_date) as integer) as year,
        cast(extract(quarter from month_start_date) as integer) as quarter,
        cast(extract(month from month_start_date) as integer) as month,
        {{ month_name('month_start_date') }} as month_name,
        cast(extract(day from {{ dbt.last_day('month_start_date', 'month') }}) as integer) as days_in_month

    from months

)

select * from final
