{#-
    The partitioned_by config for a mart: Hive partitions on Athena; none on DuckDB, where dbt-duckdb
    partitions only DuckLake tables and warns about anything else.
-#}
{% macro table_partitions(columns) -%}
    {{ return(adapter.dispatch('table_partitions', 'insightflow')(columns)) }}
{%- endmacro %}

{% macro default__table_partitions(columns) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro athena__table_partitions(columns) -%}
    {{ return(columns) }}
{%- endmacro %}
