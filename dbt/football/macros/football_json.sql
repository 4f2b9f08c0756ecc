{#
    JSON access and array flattening differ by warehouse: Snowflake reads VARIANT paths and
    `lateral flatten`, DuckDB uses JSON functions and `unnest`. Models call these macros only.
    Paths are dotted key paths (`team.name`); Snowflake gets bracket notation so keys that are
    SQL keywords (`group`) need no quoting.
#}

{% macro football_json(expression, path) -%}
    {{ return(adapter.dispatch('football_json', 'football')(expression, path)) }}
{%- endmacro %}

{% macro snowflake__football_json(expression, path) -%}
    {{ expression }}{% for key in path.split('.') %}['{{ key }}']{% endfor %}
{%- endmacro %}

{% macro duckdb__football_json(expression, path) -%}
    json_extract({{ expression }}, '$.{{ path }}')
{%- endmacro %}


{% macro football_json_text(expression, path) -%}
    {{ return(adapter.dispatch('football_json_text', 'football')(expression, path)) }}
{%- endmacro %}

{% macro snowflake__football_json_text(expression, path) -%}
    {{ football_json(expression, path) }}::varchar
{%- endmacro %}

{% macro duckdb__football_json_text(expression, path) -%}
    json_extract_string({{ expression }}, '$.{{ path }}')
{%- endmacro %}


{#- A from-clause item, joined with a comma, yielding one row per array element as `<alias>.value`. -#}
{% macro football_flatten(array_expression, alias) -%}
    {{ return(adapter.dispatch('football_flatten', 'football')(array_expression, alias)) }}
{%- endmacro %}

{% macro snowflake__football_flatten(array_expression, alias) -%}
    lateral flatten(input => {{ array_expression }}) as {{ alias }}
{%- endmacro %}

{% macro duckdb__football_flatten(array_expression, alias) -%}
    unnest(cast({{ array_expression }} as json[])) as {{ alias }}(value)
{%- endmacro %}


{#- Snapshot files are named <fetched-at UTC as %Y%m%dT%H%M%S.%fZ>.json; the lake key is the only record of it in Snowflake. -#}
{% macro football_fetched_at(file_name) -%}
    {{ return(adapter.dispatch('football_fetched_at', 'football')(file_name)) }}
{%- endmacro %}

{% macro snowflake__football_fetched_at(file_name) -%}
    to_timestamp_ntz(
        regexp_substr({{ file_name }}, '([0-9]{8}T[0-9]{6}[.][0-9]{6})Z[.]json$', 1, 1, 'e', 1),
        'YYYYMMDD"T"HH24MISS.FF6'
    )
{%- endmacro %}

{% macro duckdb__football_fetched_at(file_name) -%}
    strptime(regexp_extract({{ file_name }}, '([0-9]{8}T[0-9]{6}[.][0-9]{6})Z[.]json$', 1), '%Y%m%dT%H%M%S.%f')
{%- endmacro %}
