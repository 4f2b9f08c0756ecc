{#-
    Fails on rows whose column lies outside [min_value, max_value] (bounds optional; exclusive when
    inclusive=false). Same signature as dbt_utils.accepted_range, which cannot be installed offline.
    Nulls pass: pair with not_null where they must not occur.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}

with

validation as (

    select {{ column_name }} as value_to_check
    from {{ model }}
    where {{ column_name }} is not null

),

errors as (

    select value_to_check
    from validation
    where
        -- Trino compares NaN unequal to everything, itself included, so it would pass both bounds
        value_to_check <> value_to_check
        {%- if min_value is not none %}
        or value_to_check {{ '<' if inclusive else '<=' }} {{ min_value }}
        {%- endif %}
        {%- if max_value is not none %}
        or value_to_check {{ '>' if inclusive else '>=' }} {{ max_value }}
        {%- endif %}

)

select * from errors

{% endtest %}
