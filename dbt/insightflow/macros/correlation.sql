{#-
    Pearson correlation of two columns over the rows where both are non-null, or null when either
    side is constant there. DuckDB and Trino both return NaN for a constant side, and a NaN would
    pass through averages and sort above 1 in range checks; RON95 was fixed for years, so this is common.
-#}
{% macro correlation(y, x) -%}
    {{ return(adapter.dispatch('correlation', 'insightflow')(y, x)) }}
{%- endmacro %}

{% macro default__correlation(y, x) -%}
    case
        when stddev_samp(case when {{ y }} is not null then {{ x }} end) > 0
            and stddev_samp(case when {{ x }} is not null then {{ y }} end) > 0
            then corr({{ y }}, {{ x }})
    end
{%- endmacro %}
