{#
    Each changed tick must cost the same at the end of a season (or of ten) as at the start, so the
    big models and their tests look only at the rows of the newest load:

    - `football_loaded_after(this)`: in an incremental model's import CTE, keeps the rows loaded
      after the newest row the model already holds. It runs `max(loaded_at)` first and inlines the
      result as a literal, so the filter reaches the scan of the raw table (or staging table) itself:
      DuckDB skips row groups and Snowflake micro-partitions by their loaded_at range, and only the
      new snapshots' JSON is ever flattened.
    - `where: __football_new_rows__` on a data test (resolved by `get_where_subquery` below, at run
      time, since test configs cannot call project macros) or `football_new_rows(ref(...))` in a
      singular test: the rows with the newest `loaded_at` of that model, i.e. this tick's snapshots.
      `--vars '{"football_full_check": true}'` (flow parameter `full_check`) tests every row.
#}

{% macro football_loaded_after(relation) -%}
    {%- set latest = none -%}
    {%- if execute -%}
        {%- set latest = run_query("select max(loaded_at) from " ~ relation).columns[0].values()[0] -%}
    {%- endif -%}
    loaded_at > cast('{{ latest if latest is not none else "1900-01-01 00:00:00" }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}


{% macro football_new_rows(relation) -%}
    {%- if var('football_full_check', false) -%}
        1 = 1
    {%- else -%}
        loaded_at >= (select max(loaded_at) from {{ relation }})
    {%- endif -%}
{%- endmacro %}


{#- dbt's own get_where_subquery, plus the `__football_new_rows__` placeholder. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__football_new_rows__', football_new_rows(relation)) -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
