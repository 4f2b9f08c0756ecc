{#- Percent change from previous to current; null when previous is null or zero. -#}
{% macro percent_change(current, previous) -%}
    ({{ current }} - {{ previous }}) / nullif({{ previous }}, 0) * 100
{%- endmacro %}
