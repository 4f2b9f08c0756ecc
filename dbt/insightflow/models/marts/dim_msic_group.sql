with

stg_dosm__msic_groups as (

    select
        msic_group_code,
        msic_division_code,
        msic_section_code,
        msic_group_description
    from {{ ref('stg_dosm__msic_groups') }}

),

stg_dosm__msic_divisions as (

    select
        msic_division_code,
        msic_division_description
    from {{ ref('stg_dosm__msic_divisions') }}

),

stg_dosm__msic_sections as (

    select
        msic_section_code,
        msic_section_description
    from {{ ref('stg_dosm__msic_sections') }}

),

stg_dosm__iowrt_3d as (

    select distinct msic_group_code from {{ ref('stg_dosm__iowrt_3d') }}

),

groups_joined_to_parents as (

    select
        stg_dosm__msic_groups.msic_group_code,
        stg_dosm__msic_groups.msic_group_description,
        stg_dosm__msic_groups.msic_division_code,
        stg_dosm__msic_divisions.msic_division_description,
        stg_dosm__msic_groups.msic_section_code,
        stg_dosm__msic_sections.msic_section_description,
        stg_dosm__iowrt_3d.msic_group_code is not null as has_retail_trade_index
    from stg_dosm__msic_groups
    left join stg_dosm__msic_divisions
        on stg_dosm__msic_groups.msic_division_code = stg_dosm__msic_divisions.msic_division_code
    left join stg_dosm__msic_sections
        on stg_dosm__msic_groups.msic_section_code = stg_dosm__msic_sections.msic_section_code
    left join stg_dosm__iowrt_3d
        on stg_dosm__msic_groups.msic_group_code = stg_dosm__iowrt_3d.msic_group_code

),

final as (

    select * from groups_joined_to_parents

)

select * from final
