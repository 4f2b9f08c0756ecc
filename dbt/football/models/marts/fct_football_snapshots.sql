{#
    One row per distinct snapshot (standings or scorers) of a competition and season, and when it
    was the truth: valid_from = first seen; valid_to = when the next snapshot was first seen (null
    while it is current); last_confirmed_at = the last tick that found it unchanged. Between
    last_confirmed_at and valid_to nobody looked (a failed or skipped tick): the table is inferred
    to have held, not observed. A view: it costs nothing to build and the ledger is small.
#}
{{ config(materialized='view') }}

with

snapshots as (
    select
        snapshot_id,
        endpoint,
        competition_code,
        season_year,
        content_sha256,
        matchday,
        confirmations,
        first_seen_at,
        last_confirmed_at
    from {{ ref('stg_football__snapshots') }}
),

snapshots_with_validity as (
    select
        *,
        first_seen_at as valid_from,
        lead(first_seen_at) over (
            partition by endpoint, competition_code, season_year
            order by first_seen_at
        ) as valid_to
    from snapshots
),

final as (
    select
        *,
        valid_to is null as is_current
    from snapshots_with_validity
)

select * from final
