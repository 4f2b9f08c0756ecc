-- A failure means a standings row whose wins, draws and losses do not add up to games played:
-- the API changed a field's meaning or the flattening paired fields from different teams.
select
    standing_id,
    played_games,
    won,
    draw,
    lost
from {{ ref('stg_football__standings') }}
where {{ football_new_rows(ref('stg_football__standings')) }}
    and won + draw + lost != played_games
