-- dim_date must hold every month between its first and last, once: a gap would drop fact rows from
-- calendar joins and a duplicate would double them.
with

dim_date as (

    select month_start_date from {{ ref('dim_date') }}

),

span as (

    select
        count(*) as months,
        count(distinct month_start_date) as distinct_months,
        {{ dbt.datediff('min(month_start_date)', 'max(month_start_date)', 'month') }} + 1 as months_in_span
    from dim_date

),

final as (

    select *
    from span
    where months <> months_in_span or distinct_months <> months

)

select * from final
