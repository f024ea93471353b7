"""Music: the user's library with its play history, a streaming catalog, search and playback.

Track ids say where a track lives: ``lib-…`` is in the user's library, ``cat-…`` in the catalog. Some
titles exist in both with different artists on purpose: the library's "Toxic" is BoyWithUke's (played
several times today), the catalog's is Britney Spears'. A good agent asked to "play Toxic" plays the
library track. Ten more titles have such a twin (Circles, Ghost, Halo, Hurt, ...), so task generators
find the trap on many titles.

The data has no clock: "today" is 2026-11-26 and the session starts at 20:00; each ``play`` is stamped
one minute after the previous one. State (what is playing, the history) lives in one
:class:`MusicPlayer` per server object, so :func:`make_server` gives a fresh player each time.

The player's state is also an MCP resource, ``music://state`` (JSON: ``now_playing``, the id of the
track playing or null; ``started_at``; ``session_plays``, the ids played since the server started,
oldest first; ``total_plays``). Resources are not tools: a model that is shown the tool list never
sees it; the sandbox reads it after each step to check a task's ``expected_state``. A second resource,
``music://tracks`` (JSON: ``library`` and ``catalog``, every track as the search tools return them),
lets a task generator read the whole data without a search.

Run it over stdio with ``python -m servers.music``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)

TODAY = "2026-11-26"
SESSION_START = datetime(2026, 11, 26, 20, 0)
STATE_URI = "music://state"
TRACKS_URI = "music://tracks"


# --------------------------------------------------------------------------- records


class Track(BaseModel):
    """A playable track."""

    id: str = Field(description="Track id: 'lib-…' for the user's library, 'cat-…' for the catalog.")
    title: str = Field(description="Song title.")
    artist: str = Field(description="Performing artist.")
    album: str = Field(description="Album the track is from.")
    duration_s: int = Field(description="Length in seconds.")
    source: Literal["library", "catalog"] = Field(description="Where the track lives.")


class SearchResults(BaseModel):
    """Tracks matching a query, best first."""

    query: str = Field(description="The query as given.")
    tracks: list[Track] = Field(description="Matching tracks; empty when nothing matches.")


class Play(BaseModel):
    """One play of a track."""

    track_id: str = Field(description="Id of the track played.")
    title: str = Field(description="Song title.")
    artist: str = Field(description="Performing artist.")
    played_at: str = Field(description="When it started, local time, YYYY-MM-DDTHH:MM.")


class RecentlyPlayed(BaseModel):
    """The play history, most recent first."""

    plays: list[Play] = Field(description="Most recent first.")
    total_plays: int = Field(description="How many plays the whole history holds.")


class NowPlaying(BaseModel):
    """What the player is doing."""

    playing: bool = Field(description="Whether a track is playing.")
    track: Track | None = Field(description="The track playing, or null when nothing is.")
    started_at: str | None = Field(description="When it started, local time, or null.")


# --------------------------------------------------------------------------- data


def _track(id_: str, title: str, artist: str, album: str, duration_s: int) -> Track:
    source: Literal["library", "catalog"] = "library" if id_.startswith("lib-") else "catalog"
    return Track(id=id_, title=title, artist=artist, album=album, duration_s=duration_s, source=source)


LIBRARY: tuple[Track, ...] = (
    _track("lib-001", "Toxic", "BoyWithUke", "Serotonin Dreams", 162),
    _track("lib-002", "Heat Waves", "Glass Animals", "Dreamland", 239),
    _track("lib-003", "Blinding Lights", "The Weeknd", "After Hours", 200),
    _track("lib-004", "Levitating", "Dua Lipa", "Future Nostalgia", 203),
    _track("lib-005", "Sweater Weather", "The Neighbourhood", "I Love You.", 240),
    _track("lib-006", "Circles", "Post Malone", "Hollywood's Bleeding", 215),
    _track("lib-007", "Bad Habit", "Steve Lacy", "Gemini Rights", 232),
    _track("lib-008", "Electric Feel", "MGMT", "Oracular Spectacular", 229),
    _track("lib-009", "Riptide", "Vance Joy", "Dream Your Life Away", 204),
    _track("lib-010", "Flowers", "Miley Cyrus", "Endless Summer Vacation", 200),
    _track("lib-011", "Ghost", "Justin Bieber", "Justice", 153),
    _track("lib-012", "Halo", "Beyoncé", "I Am... Sasha Fierce", 261),
    _track("lib-013", "Hurt", "Johnny Cash", "American IV: The Man Comes Around", 218),
    _track("lib-014", "Hello", "Adele", "25", 295),
    _track("lib-015", "Stay", "Rihanna", "Unapologetic", 240),
    _track("lib-016", "Faded", "Alan Walker", "Different World", 212),
    _track("lib-017", "Jump", "Van Halen", "1984", 241),
    _track("lib-018", "Stronger", "Kelly Clarkson", "Stronger", 222),
    _track("lib-019", "Creep", "Radiohead", "Pablo Honey", 238),
    _track("lib-020", "Dreams", "The Cranberries", "Everybody Else Is Doing It", 271),
    _track("lib-021", "Mr. Brightside", "The Killers", "Hot Fuss", 222),
    _track("lib-022", "Dancing Queen", "ABBA", "Arrival", 231),
)

CATALOG: tuple[Track, ...] = (
    _track("cat-001", "Toxic", "Britney Spears", "In the Zone", 199),
    _track("cat-002", "Womanizer", "Britney Spears", "Circus", 224),
    _track("cat-003", "Circles", "Mac Miller", "Circles", 170),
    _track("cat-004", "Heat Waves", "Glass Animals", "Dreamland", 239),
    _track("cat-005", "Running Up That Hill", "Kate Bush", "Hounds of Love", 300),
    _track("cat-006", "Ghost", "Ella Henderson", "Chapter One", 213),
    _track("cat-007", "Blinding Lights", "The Weeknd", "After Hours", 200),
    _track("cat-008", "Dreams", "Fleetwood Mac", "Rumours", 257),
    _track("cat-009", "Halo", "Depeche Mode", "Violator", 270),
    _track("cat-010", "Hurt", "Nine Inch Nails", "The Downward Spiral", 373),
    _track("cat-011", "Hello", "Lionel Richie", "Can't Slow Down", 251),
    _track("cat-012", "Stay", "Zedd", "Stay Single", 210),
    _track("cat-013", "Faded", "ZHU", "The Nightday", 223),
    _track("cat-014", "Jump", "Kris Kross", "Totally Krossed Out", 195),
    _track("cat-015", "Stronger", "Kanye West", "Graduation", 311),
    _track("cat-016", "Creep", "Stone Temple Pilots", "Core", 333),
    _track("cat-017", "Bohemian Rhapsody", "Queen", "A Night at the Opera", 355),
    _track("cat-018", "Take On Me", "a-ha", "Hunting High and Low", 225),
    _track("cat-019", "Hey Ya!", "OutKast", "Speakerboxxx/The Love Below", 235),
    _track("cat-020", "Yellow", "Coldplay", "Parachutes", 269),
)

# (track id, played_at), oldest first. Today: Toxic 4 times, Heat Waves twice, three others once;
# yesterday Heat Waves led, so "most played today" needs the dates.
_HISTORY: tuple[tuple[str, str], ...] = (
    ("lib-004", "2026-11-25T08:05"),
    ("lib-002", "2026-11-25T08:09"),
    ("lib-004", "2026-11-25T12:30"),
    ("lib-002", "2026-11-25T18:02"),
    ("lib-008", "2026-11-25T18:06"),
    ("lib-002", "2026-11-25T22:40"),
    ("lib-001", "2026-11-26T07:42"),
    ("lib-001", "2026-11-26T07:45"),
    ("lib-002", "2026-11-26T08:10"),
    ("lib-003", "2026-11-26T12:14"),
    ("lib-001", "2026-11-26T12:18"),
    ("lib-007", "2026-11-26T17:20"),
    ("lib-002", "2026-11-26T17:24"),
    ("lib-001", "2026-11-26T18:31"),
    ("lib-005", "2026-11-26T19:05"),
)


def _matches(track: Track, words: list[str]) -> bool:
    haystack = f"{track.title} {track.artist} {track.album}".casefold()
    return all(word in haystack for word in words)


def _search(tracks: tuple[Track, ...], query: str) -> SearchResults:
    """Tracks whose title, artist or album contain every word of ``query``; title matches first."""
    words = query.casefold().split()
    if not words:
        raise ToolError("The query is empty; give a title, an artist or an album.")
    found = [track for track in tracks if _matches(track, words)]
    exact_title = query.strip().casefold()
    found.sort(key=lambda track: track.title.casefold() != exact_title)  # stable: keeps data order
    return SearchResults(query=query, tracks=found)


# --------------------------------------------------------------------------- state


class MusicPlayer:
    """One listener's player: the track playing and the play history."""

    def __init__(self) -> None:
        self._tracks = {track.id: track for track in (*LIBRARY, *CATALOG)}
        self._history = [self._play_record(track_id, at) for track_id, at in _HISTORY]
        self._now: Track | None = None
        self._started_at: str | None = None
        self._clock = SESSION_START
        self._session_plays: list[str] = []

    def _play_record(self, track_id: str, played_at: str) -> Play:
        track = self._tracks[track_id]
        return Play(track_id=track.id, title=track.title, artist=track.artist, played_at=played_at)

    def track(self, track_id: str) -> Track:
        """The track with this id, or a ToolError that says how to find ids."""
        found = self._tracks.get(track_id.strip())
        if found is None:
            raise ToolError(
                f"Unknown track id {track_id!r}. Ids look like 'lib-001' (your library) or 'cat-001' "
                "(the catalog); find them with search_library or search_catalog."
            )
        return found

    def play(self, track_id: str) -> NowPlaying:
        """Start a track now and append it to the history."""
        track = self.track(track_id)
        started_at = self._clock.strftime("%Y-%m-%dT%H:%M")
        self._clock += timedelta(minutes=1)  # no real clock: keeps plays ordered and deterministic
        self._now, self._started_at = track, started_at
        self._history.append(self._play_record(track.id, started_at))
        self._session_plays.append(track.id)
        logger.info("playing %s (%s - %s)", track.id, track.artist, track.title)
        return self.now_playing()

    def now_playing(self) -> NowPlaying:
        """What is playing, if anything."""
        return NowPlaying(playing=self._now is not None, track=self._now, started_at=self._started_at)

    def recently_played(self, limit: int) -> RecentlyPlayed:
        """The last ``limit`` plays, most recent first."""
        plays = list(reversed(self._history))[:limit]
        return RecentlyPlayed(plays=plays, total_plays=len(self._history))

    def state(self) -> dict[str, object]:
        """The player's state as the ``music://state`` resource shows it (module doc)."""
        return {
            "now_playing": self._now.id if self._now is not None else None,
            "started_at": self._started_at,
            "session_plays": list(self._session_plays),
            "total_plays": len(self._history),
        }


# --------------------------------------------------------------------------- the server

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

Query = Annotated[
    str,
    Field(
        description="Words to find in title, artist or album (case-insensitive).",
        min_length=1,
        max_length=200,
    ),
]

Limit = Annotated[int, Field(description="How many plays to return, most recent first.", ge=1, le=50)]
TrackId = Annotated[
    str, Field(description="Id from a search, e.g. 'lib-001' or 'cat-001'.", min_length=1, max_length=40)
]
_CHANGES_STATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


def make_server() -> MCPServer:
    """A music server with its own fresh player (nothing playing, the seed history)."""
    player = MusicPlayer()
    server = MCPServer(
        "music",
        version="1.0.0",
        instructions=(
            "The user's music. Prefer the user's library (search_library) over the catalog when both have "
            "a song; the play history shows what the user listens to."
        ),
    )

    # The tools are async so they run on the event loop, one at a time: the player needs no lock.
    @server.tool(annotations=_READ_ONLY)
    async def search_library(query: Query) -> SearchResults:
        """Search the user's own library. Ids of library tracks start with 'lib-'."""
        return _search(LIBRARY, query)

    @server.tool(annotations=_READ_ONLY)
    async def search_catalog(query: Query) -> SearchResults:
        """Search the streaming catalog (songs the user does not own). Ids start with 'cat-'."""
        return _search(CATALOG, query)

    @server.tool(annotations=_READ_ONLY)
    async def get_recently_played(limit: Limit = 10) -> RecentlyPlayed:
        """The user's play history, most recent first, with the time each play started."""
        return player.recently_played(limit)

    @server.tool(annotations=_CHANGES_STATE)
    async def play(track_id: TrackId) -> NowPlaying:
        """Start playing a track now (replaces whatever is playing) and add it to the history."""
        return player.play(track_id)

    @server.tool(annotations=_READ_ONLY)
    async def now_playing() -> NowPlaying:
        """The track playing right now, if any."""
        return player.now_playing()

    @server.resource(STATE_URI, name="state", mime_type="application/json")
    async def state() -> str:
        """The player's state (not a tool: what the sandbox checks, never shown to the model)."""
        return json.dumps(player.state())

    @server.resource(TRACKS_URI, name="tracks", mime_type="application/json")
    async def tracks() -> str:
        """Every track of the library and the catalog (not a tool: what task generators read)."""
        return json.dumps(
            {
                "library": [track.model_dump() for track in LIBRARY],
                "catalog": [track.model_dump() for track in CATALOG],
            }
        )

    return server


server = make_server()

if __name__ == "__main__":
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire
