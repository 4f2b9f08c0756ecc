{#
    dbt source freshness compares each source's max(loaded_at_field) with the warehouse's clock. The
    offline sample is a fixed snapshot of the past, so the flow judges it against the sample's own
    as-of date instead (INSIGHTFLOW_FRESHNESS_AS_OF, 'YYYY-MM-DD'; an environment variable, not a var,
    which would make dbt re-parse the project each time it changes), as it does its own freshness
    checks (tasks/insightflow/freshness.py); without it this is dbt's own default. A root-project
    default__ macro takes precedence over dbt's for every adapter without its own version (DuckDB,
    Athena). The timestamp literal is valid on DuckDB and Trino alike.
#}
{% macro default__collect_freshness(source, loaded_at_field, filter) %}
    {%- set as_of = env_var('INSIGHTFLOW_FRESHNESS_AS_OF', '') -%}
    {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
        select
            max({{ loaded_at_field }}) as max_loaded_at,
            {% if as_of -%}
                timestamp '{{ as_of }} 00:00:00' as snapshotted_at
            {%- else -%}
                {{ current_timestamp() }} as snapshotted_at
            {%- endif %}
        from {{ source }}
        {% if filter -%}
            where {{ filter }}
        {%- endif %}
    {%- endcall %}
    {{ return(load_result('collect_freshness')) }}
{% endmacro %}
