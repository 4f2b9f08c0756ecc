{#-
    A query returning one row per month, column month_start_date (a date), from the month of
    start_column to the month of end_column inclusive, for each row of from_relation (usually a
    one-row CTE of bounds). DuckDB unnests generate_series; Trino cross joins an unnested sequence.
-#}
{% macro month_spine(from_relation, start_column, end_column) -%}
    {{ return(adapter.dispatch('month_spine', 'insightflow')(from_relation, start_column, end_column)) }}
{%- endmacro %}

{% macro default__month_spine(from_relation, start_column, end_column) -%}
    select cast(month_start_at as date) as month_start_date
    from (
        select
            unnest(generate_series(
                cast({{ month_start(start_column) }} as timestamp),
                cast({{ month_start(end_column) }} as timestamp),
                interval 1 month
            )) as month_start_at
        from {{ from_relation }}
    ) as spine
{%- endmacro %}

{% macro athena__month_spine(from_relation, start_column, end_column) -%}
    select spine.month_start_date
    from {{ from_relation }}
    cross join unnest(
        sequence({{ month_start(start_column) }}, {{ month_start(end_column) }}, interval '1' month)
    ) as spine (month_start_date)
{%- endmacro %}

{% macro trino__month_spine(from_relation, start_column, end_column) -%}
    {{ return(athena__month_spine(from_relation, start_column, end_column)) }}
{%- endmacro %}
