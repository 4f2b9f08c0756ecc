{#- Only the columns every file has: ron95_skps, ron95_budi95, diesel_budi and diesel_skds come and go. -#}
with

fuelprice as (

    select
        ymd_date,
        ron95,
        ron97,
        diesel,
        diesel_eastmsia
    from {{ source('datagovmy', 'fuelprice') }}
    -- 'change_weekly' rows are differences from the previous week, derivable from the levels
    where series_type = 'level'

),

final as (

    select
        -- dates
        cast(ymd_date as date) as price_date,

        -- measures, RM per litre
        cast(ron95 as {{ type_double() }}) as ron95_myr_per_litre,
        cast(ron97 as {{ type_double() }}) as ron97_myr_per_litre,
        cast(diesel as {{ type_double() }}) as diesel_myr_per_litre,
        cast(diesel_eastmsia as {{ type_double() }}) as diesel_eastmsia_myr_per_litre

    from fuelprice

)

select * from final
