"""A deterministic football-data.org v4 sample and a loopback server that serves it at the real paths.

``python flows/football.py --sample`` starts ``SampleServer`` in-process and points the client's base
URL at it, so the offline run goes through the same fetch, pacing, validation and landing code as a
real one. The server behaves like the API where the pipeline depends on it: it checks
``X-Auth-Token``, keeps a per-minute request budget (the "minute" is configurable so tests can use
3 seconds), sends ``X-Requests-Available-Minute`` and ``X-RequestCounter-Reset`` on every response,
answers 429/403/404/400 with the API's JSON error bodies, and can be scripted to misbehave.

The sample is a simulated double round-robin per competition, so the standings are internally
consistent (won + draw + lost = played, points = 3 * won + draw, goals balance) and every scorer's
goals come out of their team's goals.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SAMPLE_TOKEN = "sample-token-not-a-secret"
SAMPLE_SEASON = 2024

COMPETITIONS: dict[str, dict[str, Any]] = {
    "PL": {"id": 2021, "name": "Premier League", "area": (2072, "England", "ENG"), "teams": [
        (57, "Arsenal FC", "Arsenal", "ARS"), (61, "Chelsea FC", "Chelsea", "CHE"),
        (64, "Liverpool FC", "Liverpool", "LIV"), (65, "Manchester City FC", "Man City", "MCI"),
        (66, "Manchester United FC", "Man United", "MUN"), (73, "Tottenham Hotspur FC", "Tottenham", "TOT")]},
    "BL1": {"id": 2002, "name": "Bundesliga", "area": (2088, "Germany", "DEU"), "teams": [
        (3, "Bayer 04 Leverkusen", "Leverkusen", "B04"), (4, "Borussia Dortmund", "Dortmund", "BVB"),
        (5, "FC Bayern München", "Bayern", "FCB"), (11, "VfL Wolfsburg", "Wolfsburg", "WOB"),
        (19, "Eintracht Frankfurt", "Frankfurt", "SGE"), (721, "RB Leipzig", "Leipzig", "RBL")]},
    "SA": {"id": 2019, "name": "Serie A", "area": (2114, "Italy", "ITA"), "teams": [
        (98, "AC Milan", "Milan", "MIL"), (100, "AS Roma", "Roma", "ROM"), (108, "FC Internazionale Milano", "Inter", "INT"),
        (109, "Juventus FC", "Juventus", "JUV"), (110, "SS Lazio", "Lazio", "LAZ"), (113, "SSC Napoli", "Napoli", "NAP")]},
    "PD": {"id": 2014, "name": "Primera Division", "area": (2224, "Spain", "ESP"), "teams": [
        (77, "Athletic Club", "Athletic", "ATH"), (78, "Club Atlético de Madrid", "Atleti", "ATM"),
        (81, "FC Barcelona", "Barça", "FCB"), (86, "Real Madrid CF", "Real Madrid", "RMA"),
        (92, "Real Sociedad de Fútbol", "Real Sociedad", "RSO"), (95, "Valencia CF", "Valencia", "VAL")]},
    "FL1": {"id": 2015, "name": "Ligue 1", "area": (2081, "France", "FRA"), "teams": [
        (516, "Olympique de Marseille", "Marseille", "MAR"), (521, "Lille OSC", "Lille", "LIL"),
        (523, "Olympique Lyonnais", "Lyon", "OL"), (524, "Paris Saint-Germain FC", "PSG", "PSG"),
        (546, "Racing Club de Lens", "Lens", "RCL"), (548, "AS Monaco FC", "Monaco", "ASM")]},
}
FIRST_NAMES = ("Alex", "Bruno", "Carlos", "Dani", "Emil", "Felix", "Goran", "Hugo", "Ivan", "Jonas", "Kai", "Luca")
LAST_NAMES = ("Silva", "Müller", "Rossi", "García", "Martin", "Jensen", "Novak", "Kowalski", "Dubois", "Smith")
# Share of a team's goals each of its four listed forwards scores; the rest are own goals and others.
SCORER_WEIGHTS = (0.4, 0.25, 0.15, 0.1, 0.1)

RESTRICTED_MESSAGE = ("The resource you are looking for is restricted and apparently not within your permissions. "
                      "Please check your subscription.")
NOT_FOUND_MESSAGE = "The resource you are looking for does not exist."
INVALID_TOKEN_MESSAGE = "Your API token is invalid."


def _rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("|".join(map(str, parts)).encode()))


def _competition(code: str) -> dict[str, Any]:
    meta = COMPETITIONS[code]
    return {"id": meta["id"], "name": meta["name"], "code": code, "type": "LEAGUE",
            "emblem": f"https://crests.football-data.org/{code}.png"}


def _area(code: str) -> dict[str, Any]:
    area_id, name, area_code = COMPETITIONS[code]["area"]
    return {"id": area_id, "name": name, "code": area_code, "flag": f"https://crests.football-data.org/{area_id}.svg"}


def _season(code: str, season: int) -> dict[str, Any]:
    matchdays = 2 * (len(COMPETITIONS[code]["teams"]) - 1)
    return {"id": COMPETITIONS[code]["id"] * 10000 + season, "startDate": f"{season}-08-16",
            "endDate": f"{season + 1}-05-25", "currentMatchday": matchdays, "winner": None}


def _team(team: tuple[int, str, str, str]) -> dict[str, Any]:
    team_id, name, short, tla = team
    return {"id": team_id, "name": name, "shortName": short, "tla": tla, "crest": f"https://crests.football-data.org/{team_id}.png"}


def simulate(code: str, season: int) -> list[tuple[int, int, int, int]]:
    """Every match of a double round-robin as (home team id, away team id, home goals, away goals)."""
    rng = _rng(code, season, "matches")
    teams = [t[0] for t in COMPETITIONS[code]["teams"]]
    strength = {t: 0.8 + rng.random() for t in teams}
    matches = []
    for home in teams:
        for away in teams:
            if home != away:
                home_goals = min(6, int(rng.expovariate(1 / (strength[home] * 1.3))))
                away_goals = min(6, int(rng.expovariate(1 / (strength[away] * 1.0))))
                matches.append((home, away, home_goals, away_goals))
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
        table.append({
            "team": _team(teams[team_id]), "playedGames": row["playedGames"], "form": ",".join(reversed(form[team_id][-5:])),
            "won": row["won"], "draw": row["draw"], "lost": row["lost"], "points": points,
            "goalsFor": row["goalsFor"], "goalsAgainst": row["goalsAgainst"],
            "goalDifference": row["goalsFor"] - row["goalsAgainst"],
        })
    table.sort(key=lambda r: (-r["points"], -r["goalDifference"], -r["goalsFor"], r["team"]["name"]))
    return [{"position": i + 1, **row} for i, row in enumerate(table)]


def standings(code: str, season: int = SAMPLE_SEASON) -> dict[str, Any]:
    """The ``/v4/competitions/{code}/standings`` body for the sample."""
    matches = simulate(code, season)
    return {
        "filters": {"season": str(season)},
        "area": _area(code),
        "competition": _competition(code),
        "season": _season(code, season),
        "standings": [
            {"stage": "REGULAR_SEASON", "type": kind, "group": None, "table": _table(code, matches, kind)}
            for kind in ("TOTAL", "HOME", "AWAY")
        ],
    }


def _players(code: str, season: int, team: tuple[int, str, str, str]) -> list[dict[str, Any]]:
    rng = _rng(code, season, team[0], "players")
    players = []
    for i in range(len(SCORER_WEIGHTS) - 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        players.append({
            "id": team[0] * 100 + i + 1, "name": f"{first} {last}", "firstName": first, "lastName": last,
            "dateOfBirth": f"{1990 + rng.randrange(15)}-0{1 + rng.randrange(9)}-1{rng.randrange(10)}",
            "nationality": COMPETITIONS[code]["area"][1], "section": "Offence", "position": "Centre-Forward",
            "shirtNumber": 7 + i, "lastUpdated": f"{season + 1}-05-26T08:00:00Z",
        })
    return players


def scorers(code: str, season: int = SAMPLE_SEASON, limit: int = 10) -> dict[str, Any]:
    """The ``/v4/competitions/{code}/scorers`` body: every team's goals shared out among its forwards."""
    matches = simulate(code, season)
    goals_for: dict[int, int] = defaultdict(int)
    for home, away, hg, ag in matches:
        goals_for[home] += hg
        goals_for[away] += ag
    games = 2 * (len(COMPETITIONS[code]["teams"]) - 1)
    rows = []
    for team in COMPETITIONS[code]["teams"]:
        rng = _rng(code, season, team[0], "goals")
        players = _players(code, season, team)
        tally = [0] * len(SCORER_WEIGHTS)
        for _ in range(goals_for[team[0]]):
            tally[rng.choices(range(len(SCORER_WEIGHTS)), weights=SCORER_WEIGHTS)[0]] += 1
        for player, goals in zip(players, tally):
            if goals:
                rows.append({
                    "player": player, "team": {**_team(team), "address": None, "website": None, "founded": None,
                                               "clubColors": None, "venue": None, "lastUpdated": f"{season + 1}-05-26T08:00:00Z"},
                    "playedMatches": games - rng.randrange(3), "goals": goals,
                    "assists": rng.randrange(goals + 1) or None, "penalties": rng.randrange(goals // 3 + 1) or None,
                })
    rows.sort(key=lambda r: (-r["goals"], r["playedMatches"], r["player"]["name"], r["player"]["id"]))
    rows = rows[:limit]
    return {"count": len(rows), "filters": {"season": str(season), "limit": limit}, "competition": _competition(code),
            "season": _season(code, season), "scorers": rows}


@dataclass
class Fault:
    """One scripted response served instead of the real one (status, body, content type, extra headers)."""

    status: int
    body: bytes | str = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


class SampleServer:
    """football-data.org v4 on loopback: token check, per-window budget, the two rate headers, faults.

    ``faults[path]`` is a queue of ``Fault`` served (in order) before the real answer for that path,
    e.g. ``faults["/v4/competitions/PL/standings"] = [Fault(503), Fault(503)]``.
    """

    def __init__(self, token: str = SAMPLE_TOKEN, per_minute: int = 10, window_s: float = 60.0,
                 season: int = SAMPLE_SEASON, restricted: tuple[str, ...] = ("CL", "WC"), send_retry_after: bool = True):
        self.token, self.per_minute, self.window_s, self.season = token, per_minute, window_s, season
        self.restricted, self.send_retry_after = restricted, send_retry_after
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.log: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._used = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def throttled(self) -> int:
        """How many requests were answered 429 by the budget (scripted 429s not included)."""
        return sum(1 for path, status in self.log if status == 429 and not path.startswith("fault:"))

    def add_faults(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self.faults[path].extend(faults)

    def spend(self, requests: int) -> None:
        """Use up part of the current window's budget, as another client sharing the token would."""
        with self._lock:
            self._tick(time.monotonic())
            self._used += requests

    def _tick(self, now: float) -> None:
        if self._window_start is None or now - self._window_start >= self.window_s:
            self._window_start, self._used = now, 0

    def _budget(self, count: bool) -> tuple[int, int, bool]:
        """(available after this request, seconds to reset, over budget) for a request arriving now."""
        with self._lock:
            now = time.monotonic()
            self._tick(now)
            over = self._used >= self.per_minute
            if count and not over:
                self._used += 1
            reset = max(1, math.ceil(self._window_start + self.window_s - now))
            return max(0, self.per_minute - self._used), reset, over

    def respond(self, path: str, query: dict[str, list[str]], token: str | None) -> tuple[int, bytes, str, dict[str, str]]:
        """The status, body, content type and headers for one GET."""
        available, reset, over = self._budget(count=True)
        headers = {"X-Requests-Available-Minute": str(available), "X-RequestCounter-Reset": str(reset),
                   "X-API-Version": "v4", "X-Authenticated-Client": "InsightFlow sample server"}
        with self._lock:
            fault = self.faults[path].popleft() if self.faults.get(path) else None
        if fault is not None:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            self.log.append((f"fault:{path}", fault.status))
            return fault.status, body, fault.content_type, {**headers, **fault.headers}
        if over:
            if self.send_retry_after:
                headers["Retry-After"] = str(reset)
            return self._error(path, 429, f"You reached your request limit. Wait {reset} seconds.", headers)
        if not token:
            return self._error(path, 403, RESTRICTED_MESSAGE, headers)
        if token != self.token:
            return self._error(path, 400, INVALID_TOKEN_MESSAGE, headers)
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v4", "competitions"] or parts[3] not in ("standings", "scorers"):
            return self._error(path, 404, NOT_FOUND_MESSAGE, headers)
        code = parts[2]
        if code in self.restricted:
            return self._error(path, 403, RESTRICTED_MESSAGE, headers)
        if code not in COMPETITIONS:
            return self._error(path, 404, NOT_FOUND_MESSAGE, headers)
        try:
            season = int(query.get("season", [self.season])[0])
            limit = int(query.get("limit", [10])[0])
        except ValueError:
            return self._error(path, 400, "The filter season or limit is invalid.", headers)
        document = standings(code, season) if parts[3] == "standings" else scorers(code, season, limit)
        self.log.append((path, 200))
        return 200, json.dumps(document, ensure_ascii=False).encode(), "application/json;charset=UTF-8", headers

    def _error(self, path: str, status: int, message: str, headers: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        self.log.append((path, status))
        body = json.dumps({"message": message, "errorCode": status}).encode()
        return status, body, "application/json;charset=UTF-8", headers

    def start(self) -> "SampleServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                parsed = urlparse(self.path)
                status, body, content_type, headers = server.respond(
                    parsed.path, parse_qs(parsed.query), self.headers.get("X-Auth-Token"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # requests carry the token header; stay quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="football-sample-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "SampleServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
