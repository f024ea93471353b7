"""The music family: library vs catalog titles, catalog plays and the play history, read from the
music server (its ``music://tracks`` resource and ``get_recently_played``).

Kinds:

- ``play-library``: "Play {title}." for a title in the user's library. The right track is the
  library's, and the answer must name its artist; where the catalog has a twin (same title), playing
  the twin is a minefield and its artist a distractor, so an agent that searches the catalog first
  is caught.
- ``play-catalog``: "Put on {title} by {artist}" for a catalog track (not one the library holds
  by the same artist): the catalog's track must play, and the answer must name its title (or,
  without a twin, its artist); playing the library twin is the minefield.

A play task's first acceptable answer is "{title} by {artist}", the one the oracle gives: the
others are contained in it, so it accepts no answer they would not, and a demonstration reports the
track the way a person would.
- ``count-plays``: how often a library title was played today or yesterday, from the history
  (today is the day of the latest play); nothing may start playing, and the count must rest on
  a ``get_recently_played`` call (``Task.evidence``): a small number is easy to guess.

The title is the split's value.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sandbox.records import Task
from sandbox.tasks._common import (
    day_before,
    draw,
    ideal,
    milestone,
    minefield,
    solution,
    state,
    task,
    variants,
    words,
)
from sandbox.tasks._split import TITLE, Split, split_of, value_tag
from sandbox.tasks._world import HISTORY_LIMIT, World

NAME = "music"
STATE = "music://state"
NOW_PLAYING = "now_playing"
SESSION_PLAYS = "session_plays"
_LEFT_OUT_WORDS = {"the", "a", "an", "and", "of"}


@dataclass(frozen=True)
class Question:
    kind: str
    track: str  # track id (count-plays: the library track whose title is counted)
    day: str = ""  # count-plays: "today" or "yesterday"

    @property
    def id(self) -> str:
        return f"music-{self.kind}-{self.track}" + (f"-{self.day}" if self.day else "")


def _twins(world: World, track: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The tracks of ``source`` ('library' or 'catalog') with the same title as ``track``."""
    pool = world.library if source == "library" else world.catalog
    return [other for other in pool if other["title"].casefold() == track["title"].casefold()]


def questions(world: World, split: Split) -> list[Question]:
    found: list[Question] = []
    library_songs = {(t["title"].casefold(), t["artist"].casefold()) for t in world.library}
    for track in world.library:
        if split_of(TITLE, track["title"]) == split and len(_twins(world, track, "library")) == 1:
            found.append(Question("play-library", track["id"]))
            found += [Question("count-plays", track["id"], day) for day in ("today", "yesterday")]
    for track in world.catalog:
        same_song = (track["title"].casefold(), track["artist"].casefold()) in library_songs
        if split_of(TITLE, track["title"]) == split and not same_song:
            found.append(Question("play-catalog", track["id"]))
    return found


def _artist_distractors(wrong: dict[str, Any], right: dict[str, Any]) -> list[str]:
    """Words of the wrong track's artist that the right one's artist does not share."""
    right_words = words(right["artist"]) | _LEFT_OUT_WORDS
    return [word for word in wrong["artist"].split() if word.casefold().strip(".,!") not in right_words]


def _playing(track_id: str) -> Any:
    return state(NAME, STATE, NOW_PLAYING, "equals", track_id)


def _played(track_id: str) -> Any:
    return state(NAME, STATE, SESSION_PLAYS, "contains", track_id)


def _play(world: World, question: Question, rng: random.Random) -> dict[str, Any]:
    tracks = {t["id"]: t for t in (*world.library, *world.catalog)}
    track = tracks[question.track]
    title, artist = track["title"], track["artist"]
    from_library = question.kind == "play-library"
    search = "search_library" if from_library else "search_catalog"
    where, other = ("library", "catalog") if from_library else ("catalog", "library")
    twins = _twins(world, track, other)
    if from_library:
        prompt = rng.choice([f"Play {title}.", f"Hey, play {title}", f"Put on {title}, please."])
        queries = variants(title)
        answer = [f"{title} by {artist}", artist]
    else:
        prompt = f"Put on {title} by {artist}, then tell me what's playing."
        queries = variants(title, f"{title} {artist}", f"{artist} {title}")
        answer = [f"{title} by {artist}", title] if twins else [f"{title} by {artist}", title, artist]
    fields: dict[str, Any] = {
        "prompt": prompt,
        "expected_answer": answer,
        "answer_match": "contains",
        "ideal_calls": [ideal(search, query=queries), ideal("play", track_id=[track["id"]])],
        "solution": [solution(search, query=title), solution("play", track_id=track["id"])],
        "expected_state": [_playing(track["id"])],
        "milestones": [
            milestone(f"searched the {where}", call=ideal(search, query=queries)),
            milestone(f"the {where} {title} is playing", state=_playing(track["id"])),
        ],
        "tags": [NAME, where, "state"],
    }
    distractors: list[str] = []
    for twin in twins:
        fields.setdefault("minefields", []).append(
            minefield(f"played the {other} {title} ({twin['artist']})", state=_played(twin["id"]))
        )
        distractors += [*_artist_distractors(twin, track), twin["id"]]
        fields["tags"].append("ambiguous")
    if not from_library and world.plays:
        last = world.plays[0]["title"]
        unrelated = not words(last) & (words(title) | words(artist))
        if unrelated and split_of(TITLE, last) == split_of(TITLE, title):
            distractors.append(last)  # what was playing before: an answer that reads the history
    fields["distractors"] = list(dict.fromkeys(distractors))
    return fields


def _count(world: World, question: Question) -> dict[str, Any]:
    track = next(t for t in world.library if t["id"] == question.track)
    title = track["title"]
    today = world.plays[0]["played_at"][:10] if world.plays else ""
    day = today if question.day == "today" else day_before(today)
    counts = Counter(p["title"].casefold() for p in world.plays if p["played_at"].startswith(day))
    read = ideal("get_recently_played")
    return {
        "prompt": f"How many times did I play {title} {question.day}?",
        "expected_answer": [str(counts[title.casefold()])],
        "answer_match": "number",
        "ideal_calls": [read],
        "evidence": [read],
        "solution": [solution("get_recently_played", limit=HISTORY_LIMIT)],
        "expected_state": [_playing(None)],  # type: ignore[arg-type]
        "milestones": [milestone("read the history", call=read)],
        "minefields": [
            minefield("changed what is playing", state=state(NAME, STATE, f"{SESSION_PLAYS}.0", "exists"))
        ],
        "tags": [NAME, "history", "counting"],
    }


def build(world: World, question: Question, rng: random.Random) -> Task:
    fields = _count(world, question) if question.kind == "count-plays" else _play(world, question, rng)
    title = next(t["title"] for t in (*world.library, *world.catalog) if t["id"] == question.track)
    fields["tags"] += [question.kind, value_tag(TITLE, title)]
    return task(id=question.id, servers=[NAME], **fields)


async def make(world: World, split: Split, n: int, rng: random.Random) -> list[Task]:
    chosen = draw(questions(world, split), rng, n, NAME, split, key=lambda q: q.id, group=lambda q: q.kind)
    return [build(world, question, rng) for question in chosen]
