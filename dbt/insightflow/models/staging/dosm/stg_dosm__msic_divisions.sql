with

msic as (

    select
        section,
        division,
        desc_en
    from {{ source('dosm', 'msic') }}
    where digits = 2

),

final as (

    select
        -- ids
        cast(division as {{ dbt.type_string() }}) as msic_division_code,
        cast(section as {{ dbt.type_string() }}) as msic_section_code,

        -- descriptions
        trim(desc_en) as msic_division_description

    from msic

)

select * from final
