with

msic as (

    select
        section,
        desc_en
    from {{ source('dosm', 'msic') }}
    where digits = 1

),

final as (

    select
        -- ids
        cast(section as {{ dbt.type_string() }}) as msic_section_code,

        -- descriptions
        trim(desc_en) as msic_section_description

    from msic

)

select * from final
