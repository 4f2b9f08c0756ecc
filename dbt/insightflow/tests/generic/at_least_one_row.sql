{#- Fails when the model is empty: an empty mart passes every other test. -#}
{% test at_least_one_row(model) %}

select 1 as no_rows
from (select count(*) as row_count from {{ model }}) as counted
where counted.row_count = 0

{% endtest %}
