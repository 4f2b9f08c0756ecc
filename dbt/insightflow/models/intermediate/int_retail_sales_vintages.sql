{#-
    One row per published value of a month's sales and volume: the headline (msic_group_code null) and
    each MSIC group ('abs' series). The lake keeps a version per changed partition, and a partition
    changes when any of its rows does, so a version that left this series' values as they were is not
    a new vintage of it: consecutive equal values collapse into the first.
-#}
with

stg_dosm__iowrt_versions as (

    select
        month_start_date,
        sales,
        volume,
        version_seen_at,
        version_source_modified_at
    from {{ ref('stg_dosm__iowrt_versions') }}
    where series = 'abs' and sales is not null

),

stg_dosm__iowrt_3d_versions as (

    select
        msic_group_code,
        month_start_date,
        sales,
        volume,
        version_seen_at,
        version_source_modified_at
    from {{ ref('stg_dosm__iowrt_3d_versions') }}
    where series = 'abs' and sales is not null

),

versions_of_both_series as (

    select
        month_start_date,
        cast(null as {{ dbt.type_string() }}) as msic_group_code,
        sales as sales_myr_million,
        volume as volume_index,
        version_seen_at,
        version_source_modified_at
    from stg_dosm__iowrt_versions

    union all

    select
        month_start_date,
        msic_group_code,
        sales as sales_myr_million,
        volume as volume_index,
        version_seen_at,
        version_source_modified_at
    from stg_dosm__iowrt_3d_versions

),

versions_compared_to_previous as (

    select
        *,
        lag(sales_myr_million) over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as previous_version_sales,
        lag(volume_index) over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as previous_version_volume,
        row_number() over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as version_number
    from versions_of_both_series

),

value_changes as (

    select
        month_start_date,
        msic_group_code,
        sales_myr_million,
        volume_index,
        version_seen_at,
        version_source_modified_at
    from versions_compared_to_previous
    where
        version_number = 1
        or sales_myr_million is distinct from previous_version_sales
        or volume_index is distinct from previous_version_volume

),

final as (

    select
        month_start_date,
        msic_group_code,
        row_number() over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as vintage_number,
        sales_myr_million,
        volume_index,
        lag(sales_myr_million) over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as previous_sales_myr_million,
        lag(volume_index) over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as previous_volume_index,
        version_seen_at as seen_at,
        coalesce(version_source_modified_at, version_seen_at) as published_at,
        lead(version_seen_at) over (
            partition by month_start_date, msic_group_code order by version_seen_at
        ) as superseded_at
    from value_changes

)

select * from final
