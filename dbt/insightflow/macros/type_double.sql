{#- dbt.type_float() renders `float`, a 4-byte real on DuckDB; measures need 8-byte doubles everywhere. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'insightflow')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}
