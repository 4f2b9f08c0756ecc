-- A failure means two consecutive snapshots of one endpoint, competition and season have the same
-- content hash: a tick that changed nothing was landed, and the history repeats a table.
with

snapshots as (
    select
        snapshot_id,
        endpoint,
        competition_code,
        season_year,
        content_sha256,
        first_seen_at
    from {{ ref('fct_football_snapshots') }}
),

snapshots_with_previous as (
    select
        *,
        lag(content_sha256) over (
            partition by endpoint, competition_code, season_year
            order by first_seen_at
        ) as previous_content_sha256
    from snapshots
)

select *
from snapshots_with_previous
where content_sha256 = previous_content_sha256
