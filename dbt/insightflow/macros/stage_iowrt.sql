{#-
    The staging model of DOSM's wholesale & retail trade index, shared by the current rows
    (stg_dosm__iowrt, stg_dosm__iowrt_3d) and every landed version of them (the `_versions` twins over
    the history tables, tasks/insightflow/ingest/history.py): one place names and types the columns, so a
    version reads exactly like the current row it was.
    by_group: the by-MSIC-group table (iowrt_3d, with group_code); seasonally_adjusted: the headline's
    volume_sa; versions: the history tables' version_seen_at and version_source_modified_at.
-#}
{% macro stage_iowrt(source_table, by_group=false, seasonally_adjusted=false, versions=false) -%}
{%- set measures = ['sales', 'volume'] + (['volume_sa'] if seasonally_adjusted else []) -%}
{%- set source_columns = ['series', 'ymd_date'] + (['group_code'] if by_group else []) + measures
    + (['version_seen_at', 'version_source_modified_at'] if versions else []) -%}
with

{{ source_table }} as (

    select
        {%- for column in source_columns %}
        {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ source('dosm', source_table) }}

),

final as (

    select
        {%- if by_group %}
        -- ids
        cast(group_code as {{ dbt.type_string() }}) as msic_group_code,
{% endif %}
        -- dimensions
        cast(series as {{ dbt.type_string() }}) as series,

        -- dates
        cast(ymd_date as date) as month_start_date,

        -- measures: RM million and index points for 'abs', percent for the growth series
        {%- for measure in measures %}
        cast({{ measure }} as {{ type_double() }}) as {{ measure }}{{ ',' if versions or not loop.last }}
        {%- endfor %}
        {%- if versions %}

        -- timestamps, UTC
        cast(version_seen_at as {{ dbt.type_timestamp() }}) as version_seen_at,
        cast(version_source_modified_at as {{ dbt.type_timestamp() }}) as version_source_modified_at
        {%- endif %}

    from {{ source_table }}

)

select * from final
{%- endmacro %}
