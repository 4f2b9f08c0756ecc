"""A deterministic football-data.org v4 sample: competitions played matchday by matchday.

The sample is a simulated double round-robin per competition, played matchday by matchday, so the
standings are internally consistent (won + draw + lost = played, points = 3 * won + draw, goals
balance) and every scorer's goals come out of their team's goals. By default the whole season has
been played; ``SampleServer.play(matchday)`` sets how many matchdays have been, so tests and
``bench/football_season.py`` can advance a season tick by tick.
"""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from typing import Any

SAMPLE_TOKEN = "sample-token-not-a-secret"
SAMPLE_SEASON = 2024

COMPETITIONS: dict[str, dict[str, Any]] = {
    # 20 teams, 38 matchdays, like the real league: the season benchmark advances it matchday by matchday.
    "PL": {
        "id": 2021,
        "name": "Premier League",
        "area": (2072, "England", "ENG"),
        "teams": [
            (57, "Arsenal FC", "Arsenal", "ARS"),
            (61, "Chelsea FC", "Chelsea", "CHE"),
            (64, "Liverpool FC", "Liverpool", "LIV"),
            (65, "Manchester City FC", "Man City", "MCI"),
            (66, "Manchester United FC", "Man United", "MUN"),
            (73, "Tottenham Hotspur FC", "Tottenham", "TOT"),
            (58, "Aston Villa FC", "Aston Villa", "AVL"),
            (62, "Everton FC", "Everton", "EVE"),
            (63, "Fulham FC", "Fulham", "FUL"),
            (67, "Newcastle United FC", "Newcastle", "NEW"),
            (76, "Wolverhampton Wanderers FC", "Wolverhampton", "WOL"),
            (351, "Nottingham Forest FC", "Nottingham", "NOT"),
            (354, "Crystal Palace FC", "Crystal Palace", "CRY"),
            (397, "Brighton & Hove Albion FC", "Brighton Hove", "BHA"),
            (402, "Brentford FC", "Brentford", "BRE"),
            (563, "West Ham United FC", "West Ham", "WHU"),
            (1044, "AFC Bournemouth", "Bournemouth", "BOU"),
            (328, "Burnley FC", "Burnley", "BUR"),
            (341, "Leeds United FC", "Leeds United", "LEE"),
            (71, "Sunderland AFC", "Sunderland", "SUN"),
        ],
    },
    "BL1": {
        "id": 2002,
        "name": "Bundesliga",
        "area": (2088, "Germany", "DEU"),
        "teams": [
            (3, "Bayer 04 Leverkusen", "Leverkusen", "B04"),
            (4, "Borussia Dortmund", "Dortmund", "BVB"),
            (5, "FC Bayern München", "Bayern", "FCB"),
            (11, "VfL Wolfsburg", "Wolfsburg", "WOB"),
            (19, "Eintracht Frankfurt", "Frankfurt", "SGE"),
            (721, "RB Leipzig", "Leipzig", "RBL"),
        ],
    },
    "SA": {
        "id": 2019,
        "name": "Serie A",
        "area": (2114, "Italy", "ITA"),
        "teams": [
            (98, "AC Milan", "Milan", "MIL"),
            (100, "AS Roma", "Roma", "ROM"),
            (108, "FC Internazionale Milano", "Inter", "INT"),
            (109, "Juventus FC", "Juventus", "JUV"),
            (110, "SS Lazio", "Lazio", "LAZ"),
            (113, "SSC Napoli", "Napoli", "NAP"),
        ],
    },
    "PD": {
        "id": 2014,
        "name": "Primera Division",
        "area": (2224, "Spain", "ESP"),
        "teams": [
            (77, "Athletic Club", "Athletic", "ATH"),
            (78, "Club Atlético de Madrid", "Atleti", "ATM"),
            (81, "FC Barcelona", "Barça", "FCB"),
            (86, "Real Madrid CF", "Real Madrid", "RMA"),
            (92, "Real Sociedad de Fútbol", "Real Sociedad", "RSO"),
            (95, "Valencia CF", "Valencia", "VAL"),
        ],
    },
    "FL1": {
        "id": 2015,
        "name": "Ligue 1",
        "area": (2081, "France", "FRA"),
        "teams": [
            (516, "Olympique de Marseille", "Marseille", "MAR"),
            (521, "Lille OSC", "Lille", "LIL"),
            (523, "Olympique Lyonnais", "Lyon", "OL"),
            (524, "Paris Saint-Germain FC", "PSG", "PSG"),
            (546, "Racing Club de Lens", "Lens", "RCL"),
            (548, "AS Monaco FC", "Monaco", "ASM"),
        ],
    },
}
FIRST_NAMES = ("Alex", "Bruno", "Carlos", "Dani", "Emil", "Felix", "Goran", "Hugo", "Ivan", "Jonas", "Kai", "Luca")
LAST_NAMES = ("Silva", "Müller", "Rossi", "García", "Martin", "Jensen", "Novak", "Kowalski", "Dubois", "Smith")
# Share of a team's goals each of its four listed forwards scores; the rest are own goals and others.
SCORER_WEIGHTS = (0.4, 0.25, 0.15, 0.1, 0.1)


def _rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("|".join(map(str, parts)).encode()))


def _competition(code: str) -> dict[str, Any]:
    meta = COMPETITIONS[code]
    return {
        "id": meta["id"],
        "name": meta["name"],
        "code": code,
        "type": "LEAGUE",
        "emblem": f"https://crests.football-data.org/{code}.png",
    }


def _area(code: str) -> dict[str, Any]:
    area_id, name, area_code = COMPETITIONS[code]["area"]
    return {"id": area_id, "name": name, "code": area_code, "flag": f"https://crests.football-data.org/{area_id}.svg"}


def matchdays(code: str) -> int:
    """Matchdays in a season: a double round-robin."""
    return 2 * (len(COMPETITIONS[code]["teams"]) - 1)


def _season(code: str, season: int, played: int | None = None) -> dict[str, Any]:
    total = matchdays(code)
    current = total if played is None else max(1, min(played, total))
    return {
        "id": COMPETITIONS[code]["id"] * 10000 + season,
        "startDate": f"{season}-08-16",
        "endDate": f"{season + 1}-05-25",
        "currentMatchday": current,
        "winner": None,
    }


def _team(team: tuple[int, str, str, str]) -> dict[str, Any]:
    team_id, name, short, tla = team
    return {
        "id": team_id,
        "name": name,
        "shortName": short,
        "tla": tla,
        "crest": f"https://crests.football-data.org/{team_id}.png",
    }


def fixtures(code: str) -> list[list[tuple[int, int]]]:
    """(home, away) team ids per matchday: the circle method, second half with home and away swapped."""
    teams = [t[0] for t in COMPETITIONS[code]["teams"]]
    rounds = []
    for r in range(len(teams) - 1):
        pairs = [(teams[i], teams[-1 - i]) for i in range(len(teams) // 2)]
        rounds.append([(a, b) if (r + i) % 2 == 0 else (b, a) for i, (a, b) in enumerate(pairs)])
        teams = [teams[0], teams[-1], *teams[1:-1]]
    return rounds + [[(away, home) for home, away in day] for day in rounds]


def simulate(code: str, season: int, played: int | None = None) -> list[tuple[int, int, int, int]]:
    """The matches of the first ``played`` matchdays (all by default) as (home id, away id, home goals, away goals)."""
    rng = _rng(code, season, "matches")
    strength = {t[0]: 0.8 + rng.random() for t in COMPETITIONS[code]["teams"]}
    days = fixtures(code)
    matches = []
    for day in days[: len(days) if played is None else played]:
        for home, away in day:
            score = _rng(code, season, home, away, "score")
            matches.append(
                (
                    home,
                    away,
                    min(6, int(score.expovariate(1 / (strength[home] * 1.3)))),
                    min(6, int(score.expovariate(1 / (strength[away] * 1.0)))),
                )
            )
    return matches


def _table(code: str, matches: list[tuple[int, int, int, int]], kind: str) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, int]] = {t[0]: defaultdict(int) for t in COMPETITIONS[code]["teams"]}
    form: dict[int, list[str]] = defaultdict(list)
    for home, away, hg, ag in matches:
        for team, scored, conceded, side in ((home, hg, ag, "HOME"), (away, ag, hg, "AWAY")):
            if kind not in ("TOTAL", side):
                continue
            row = rows[team]
            row["playedGames"] += 1
            row["goalsFor"] += scored
            row["goalsAgainst"] += conceded
            result = "won" if scored > conceded else "draw" if scored == conceded else "lost"
            row[result] += 1
            form[team].append({"won": "W", "draw": "D", "lost": "L"}[result])
    teams = {t[0]: t for t in COMPETITIONS[code]["teams"]}
    table = []
    for team_id, row in rows.items():
        points = 3 * row["won"] + row["draw"]
        table.append(
            {
                "team": _team(teams[team_id]),
                "playedGames": row["playedGames"],
                "form": ",".join(reversed(form[team_id][-5:])),
                "won": row["won"],
                "draw": row["draw"],
                "lost": row["lost"],
                "points": points,
                "goalsFor": row["goalsFor"],
                "goalsAgainst": row["goalsAgainst"],
                "goalDifference": row["goalsFor"] - row["goalsAgainst"],
            }
        )
    table.sort(key=lambda r: (-r["points"], -r["goalDifference"], -r["goalsFor"], r["team"]["name"]))
    return [{"position": i + 1, **row} for i, row in enumerate(table)]


def standings(code: str, season: int = SAMPLE_SEASON, played: int | None = None) -> dict[str, Any]:
    """The ``/v4/competitions/{code}/standings`` body after ``played`` matchdays (default: all)."""
    matches = simulate(code, season, played)
    return {
        "filters": {"season": str(season)},
        "area": _area(code),
        "competition": _competition(code),
        "season": _season(code, season, played),
        "standings": [
            {"stage": "REGULAR_SEASON", "type": kind, "group": None, "table": _table(code, matches, kind)}
            for kind in ("TOTAL", "HOME", "AWAY")
        ],
    }


def _players(code: str, season: int, team: tuple[int, str, str, str], updated: str) -> list[dict[str, Any]]:
    rng = _rng(code, season, team[0], "players")
    players = []
    for i in range(len(SCORER_WEIGHTS) - 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        players.append(
            {
                "id": team[0] * 100 + i + 1,
                "name": f"{first} {last}",
                "firstName": first,
                "lastName": last,
                "dateOfBirth": f"{1990 + rng.randrange(15)}-0{1 + rng.randrange(9)}-1{rng.randrange(10)}",
                "nationality": COMPETITIONS[code]["area"][1],
                "section": "Offence",
                "position": "Centre-Forward",
                "shirtNumber": 7 + i,
                "lastUpdated": updated,
            }
        )
    return players


def scorers(
    code: str, season: int = SAMPLE_SEASON, limit: int = 10, played: int | None = None, updated: str | None = None
) -> dict[str, Any]:
    """The ``/v4/competitions/{code}/scorers`` body: every team's goals shared out among its forwards.

    ``updated`` is the records' ``lastUpdated`` stamp (the API re-stamps it without other changes).
    """
    matches = simulate(code, season, played)
    updated = updated or f"{season + 1}-05-26T08:00:00Z"
    goals_for: dict[int, int] = defaultdict(int)
    games: dict[int, int] = defaultdict(int)
    for home, away, hg, ag in matches:
        goals_for[home] += hg
        goals_for[away] += ag
        games[home] += 1
        games[away] += 1
    rows = []
    for team in COMPETITIONS[code]["teams"]:
        rng = _rng(code, season, team[0], "goals")
        players = _players(code, season, team, updated)
        tally = [0] * len(SCORER_WEIGHTS)
        for _ in range(goals_for[team[0]]):
            tally[rng.choices(range(len(SCORER_WEIGHTS)), weights=SCORER_WEIGHTS)[0]] += 1
        for player, goals in zip(players, tally, strict=False):
            if goals:
                rows.append(
                    {
                        "player": player,
                        "team": {
                            **_team(team),
                            "address": None,
                            "website": None,
                            "founded": None,
                            "clubColors": None,
                            "venue": None,
                            "lastUpdated": updated,
                        },
                        "playedMatches": max(1, games[team[0]] - rng.randrange(3)),
                        "goals": goals,
                        "assists": rng.randrange(goals + 1) or None,
                        "penalties": rng.randrange(goals // 3 + 1) or None,
                    }
                )
    rows.sort(key=lambda r: (-r["goals"], r["playedMatches"], r["player"]["name"], r["player"]["id"]))
    rows = rows[:limit]
    return {
        "count": len(rows),
        "filters": {"season": str(season), "limit": limit},
        "competition": _competition(code),
        "season": _season(code, season, played),
        "scorers": rows,
    }
