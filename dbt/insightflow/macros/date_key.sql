{#- The dim_date key of a month, yyyymm as an integer (202401). -#}
{% macro date_key(date_expression) -%}
    cast(extract(year from {{ date_expression }}) * 100 + extract(month from {{ date_expression }}) as integer)
{%- endmacro %}
