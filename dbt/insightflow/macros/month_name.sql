{#- English month name ('January'). -#}
{% macro month_name(date_expression) -%}
    {{ return(adapter.dispatch('month_name', 'insightflow')(date_expression)) }}
{%- endmacro %}

{% macro default__month_name(date_expression) -%}
    monthname({{ date_expression }})
{%- endmacro %}

{% macro athena__month_name(date_expression) -%}
    date_format({{ date_expression }}, '%M')
{%- endmacro %}

{% macro trino__month_name(date_expression) -%}
    date_format({{ date_expression }}, '%M')
{%- endmacro %}
