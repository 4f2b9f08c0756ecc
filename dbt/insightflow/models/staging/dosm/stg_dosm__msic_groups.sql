with

msic as (

    select
        section,
        division,
        group_code,
        desc_en
    from {{ source('dosm', 'msic') }}
    where digits = 3

),

final as (

    select
        -- ids
        cast(group_code as {{ dbt.type_string() }}) as msic_group_code,
        cast(division as {{ dbt.type_string() }}) as msic_division_code,
        cast(section as {{ dbt.type_string() }}) as msic_section_code,

        -- descriptions
        trim(desc_en) as msic_group_description

    from msic

)

select * from final
