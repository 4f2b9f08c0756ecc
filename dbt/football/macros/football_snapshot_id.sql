{#
    A snapshot's id is its lake key (raw/football/<endpoint>/competition=<code>/season=<yyyy>/<fetched-at>Z.json)
    on every target, so a mart holds the same ids, and the same hashes built from them, whichever
    warehouse built it. DuckDB's raw tables store the lake key. Snowflake's store the name COPY INTO
    gives a file (metadata$filename), which is relative to the stage over the lake's raw/football/
    prefix (tasks/football/land.py RAW_PREFIX, tasks/football/snowflake.py stage_url), so the prefix
    is put back here.
#}

{% macro football_snapshot_id(file_name) -%}
    {{ return(adapter.dispatch('football_snapshot_id', 'football')(file_name)) }}
{%- endmacro %}

{% macro default__football_snapshot_id(file_name) -%}
    {{ file_name }}
{%- endmacro %}

{% macro snowflake__football_snapshot_id(file_name) -%}
    'raw/football/' || {{ file_name }}
{%- endmacro %}
