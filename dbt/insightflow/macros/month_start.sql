{#- First day of the month as a date: DuckDB's date_trunc returns a timestamp, Trino's keeps the date type. -#}
{% macro month_start(date_expression) -%}
    cast({{ dbt.date_trunc('month', date_expression) }} as date)
{%- endmacro %}

{#- The month before, as a date (DuckDB's dateadd returns a timestamp). -#}
{% macro previous_month_start(date_expression) -%}
    cast({{ dbt.dateadd('month', -1, date_expression) }} as date)
{%- endmacro %}
