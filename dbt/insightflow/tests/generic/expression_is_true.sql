{#- Fails on rows where the boolean expression is not true (as dbt_utils'); nulls count as failures. -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not coalesce({{ expression }}, false)

{% endtest %}
