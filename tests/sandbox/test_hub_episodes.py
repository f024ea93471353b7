"""Episodes of one hub: stateful servers keep their state inside the episode, from a warm pool.

Real stdio servers throughout (the music server, the crashy fixture, the files server); the in-memory
path is checked once with a server factory.
"""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import pytest

from sandbox.episodes import run_episode
from sandbox.hub import ServerConfig, ToolHub, load_config, remove_leftovers
from sandbox.models import ScriptedModel
from sandbox.records import ConfigError, Task, ToolResult

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MUSIC = {"command": "python", "args": ["-m", "servers.music"], "cwd": str(ROOT), "stateful": True}
CRASHY = {"command": "python", "args": [str(FIXTURES / "crashy_server.py")], "stateful": True}
SEED_PLAYS = 15  # the music server's history before anything is played


def _config(**servers: dict) -> dict[str, ServerConfig]:
    return load_config({"mcpServers": servers})


def _pid(result: ToolResult) -> int:
    assert not result.is_error, result.text
    return int(result.text.rsplit("(pid ", 1)[1].rstrip(")"))


def _children() -> set[int]:
    """Ids of this process's child processes, read from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.add(int(entry))
    return found


async def _gone(pid: int) -> None:
    while Path(f"/proc/{pid}").exists():
        await anyio.sleep(0.05)


# --------------------------------------------------------------------------- isolation


@pytest.mark.anyio
async def test_concurrent_episodes_see_only_their_own_history() -> None:
    histories: dict[str, dict] = {}
    played = 0
    both_played = anyio.Event()

    async def listen(hub: ToolHub, track: str) -> None:
        nonlocal played
        async with hub.episode(["music"]) as episode:
            assert not (await episode.call("play", {"track_id": track})).is_error
            played += 1
            if played == 2:
                both_played.set()
            await both_played.wait()  # both tracks are playing before either episode looks
            recent = await episode.call("get_recently_played", {"limit": 3})
            assert recent.structured is not None
            histories[track] = recent.structured

    async with ToolHub(_config(music=MUSIC), call_timeout=20) as hub:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(listen, hub, "lib-002")
                group.start_soon(listen, hub, "lib-003")
            shared = await hub.call("get_recently_played", {"limit": 1})
    for mine, theirs in [("lib-002", "lib-003"), ("lib-003", "lib-002")]:
        plays = [play["track_id"] for play in histories[mine]["plays"]]
        assert plays[0] == mine and theirs not in plays
        assert histories[mine]["total_plays"] == SEED_PLAYS + 1
    assert shared.structured is not None and shared.structured["total_plays"] == SEED_PLAYS


@pytest.mark.anyio
@pytest.mark.parametrize("pool_size", [0, 2])
async def test_sequential_episodes_start_fresh(pool_size: int) -> None:
    async with ToolHub(_config(music=MUSIC), call_timeout=20, pool_size=pool_size) as hub:
        with anyio.fail_after(60):
            async with hub.episode(["music"]) as first:
                assert not (await first.call("play", {"track_id": "lib-004"})).is_error
                playing = await first.call("now_playing", {})
            async with hub.episode(["music"]) as second:
                later = await second.call("now_playing", {})
                history = await second.call("get_recently_played", {"limit": 1})
    assert playing.structured is not None and playing.structured["playing"]
    assert later.structured is not None and not later.structured["playing"]
    assert history.structured is not None and history.structured["total_plays"] == SEED_PLAYS


@pytest.mark.anyio
async def test_a_state_dir_is_a_fresh_folder_per_connection() -> None:
    scratch = {
        "command": "python",
        "args": ["-m", "servers.files", "{state_dir}"],
        "cwd": str(ROOT),
        "stateful": True,
    }
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("sandbox-scratch-*"))
    async with ToolHub(_config(scratch=scratch), call_timeout=20) as hub:
        with anyio.fail_after(60):
            async with hub.episode() as a, hub.episode() as b:
                await a.call("write_file", {"path": "note.txt", "content": "from a"})
                await b.call("write_file", {"path": "note.txt", "content": "from b"})
                await b.call("write_file", {"path": "b-only.txt", "content": "b"})
                read_a = await a.call("read_file", {"path": "note.txt"})
                listed_a = await a.call("list_files", {})
            during = set(temp.glob("sandbox-scratch-*")) - before
    assert read_a.structured is not None and read_a.structured["text"] == "from a"
    assert listed_a.structured is not None
    assert [entry["path"] for entry in listed_a.structured["entries"]] == ["note.txt"]
    assert len(during) >= 3  # the hub's own connection, two episodes (and the pool's)
    assert set(temp.glob("sandbox-scratch-*")) - before == set()  # each removed with its connection


@pytest.mark.anyio
async def test_in_memory_factory_gives_every_episode_a_fresh_server() -> None:
    from servers.calculator import server as calculator
    from servers.music import make_server

    async with ToolHub.in_memory({"music": make_server, "calculator": calculator}) as hub:
        with anyio.fail_after(30):
            async with hub.episode(["music", "calculator"]) as a, hub.episode(["music"]) as b:
                await a.call("play", {"track_id": "lib-010"})
                a_now = await a.call("now_playing", {})
                b_now = await b.call("now_playing", {})
                sum_ = await a.call("calculate", {"expression": "2+3"})
                outside = await b.call("calculate", {"expression": "2+3"})
    assert a_now.structured is not None and a_now.structured["track"]["id"] == "lib-010"
    assert b_now.structured is not None and not b_now.structured["playing"]
    assert not sum_.is_error and "5" in sum_.text
    assert outside.error_kind == "unknown_tool"  # b's episode did not ask for the calculator


@pytest.mark.anyio
async def test_run_episode_takes_an_episode_view() -> None:
    from servers.music import make_server

    task = Task(id="play", prompt="Play Flowers", servers=["music"], expected_answer="Flowers")
    model = ScriptedModel(
        [
            '<think>play it</think>\n<tool_call>\n{"name": "play", "arguments": {"track_id": "lib-010"}}'
            "\n</tool_call>",
            "<think>done</think>\n<answer>Flowers is playing</answer>",
        ]
    )
    async with ToolHub.in_memory({"music": make_server}) as hub:
        async with hub.episode(task.servers) as episode:
            trace = await run_episode(task, model, episode)
        after = await hub.call("now_playing", {})
    assert trace.stop_reason == "answer" and not trace.steps[0].result.is_error  # type: ignore[union-attr]
    assert [info.name for info in trace.servers] == ["music"]
    assert after.structured is not None and not after.structured["playing"]


# --------------------------------------------------------------------------- the pool


@pytest.mark.anyio
async def test_the_pool_refills_and_hands_out_each_connection_once() -> None:
    async with ToolHub(_config(crashy=CRASHY), pool_size=2) as hub:
        with anyio.fail_after(90):
            shared = _pid(await hub.call("echo", {"text": "hub"}))
            pids = []
            for _ in range(3):
                await hub.warm()
                assert hub.pooled() == {"crashy": 2}
                async with hub.episode() as episode:
                    assert hub.pooled() == {"crashy": 1}  # taken, its replacement is starting
                    pids.append(_pid(await episode.call("echo", {"text": "episode"})))
                await _gone(pids[-1])  # closed with its episode, never reused
            await hub.warm()
            assert hub.pooled() == {"crashy": 2}
    assert len(set(pids)) == 3 and shared not in pids


@pytest.mark.anyio
async def test_a_pooled_server_that_dies_while_waiting_is_not_handed_out() -> None:
    before = _children()
    async with ToolHub(_config(crashy={**CRASHY, "pool_size": 1})) as hub:
        with anyio.fail_after(60):
            await hub.warm()
            shared = _pid(await hub.call("echo", {"text": "hub"}))
            (waiting,) = _children() - before - {shared}
            os.kill(waiting, signal.SIGKILL)
            while hub.pooled()["crashy"]:  # the pool notices the death without a call
                await anyio.sleep(0.05)
            async with hub.episode() as episode:
                result = await episode.call("echo", {"text": "fresh"})
    assert _pid(result) not in (waiting, shared)


@pytest.mark.anyio
async def test_closing_the_hub_ends_every_server_process() -> None:
    before = _children()
    config = _config(crashy=CRASHY, music={**MUSIC, "pool_size": 1})
    async with ToolHub(config, pool_size=2) as hub:
        with anyio.fail_after(60):
            await hub.warm()
            assert hub.pooled() == {"crashy": 2, "music": 1}
            async with hub.episode() as episode:
                await episode.call("echo", {"text": "x"})
                during = _children() - before
        # leaving now: the replacements of the episode's connections are still starting
    assert len(during) >= 2 + 2 + 1  # shared connections, the episode's, at least one waiting
    assert _children() - before == set()


# --------------------------------------------------------------------------- failures


@pytest.mark.anyio
async def test_a_crash_in_one_episode_restarts_only_its_connection() -> None:
    async with ToolHub(_config(crashy=CRASHY), call_timeout=5) as hub:
        with anyio.fail_after(60):
            shared = _pid(await hub.call("echo", {"text": "hub"}))
            async with hub.episode() as a, hub.episode() as b:
                a_before = _pid(await a.call("echo", {"text": "a"}))
                b_before = _pid(await b.call("echo", {"text": "b"}))
                crashed = await a.call("crash", {})
                a_after = _pid(await a.call("echo", {"text": "a"}))
                b_after = _pid(await b.call("echo", {"text": "b"}))
                assert a.restarts == {"crashy": 1} and b.restarts == {}
            shared_after = _pid(await hub.call("echo", {"text": "hub"}))
    assert crashed.is_error and crashed.error_kind == "server_crashed" and "restarted" in crashed.text
    assert a_after not in (a_before, b_before, shared)
    assert b_after == b_before and shared_after == shared
    assert hub.restarts == {}


@pytest.mark.anyio
async def test_a_hung_episode_call_times_out_and_its_connection_is_replaced() -> None:
    async with ToolHub(_config(crashy=CRASHY), call_timeout=1.0) as hub:
        with anyio.fail_after(60):
            async with hub.episode() as episode:
                before = _pid(await episode.call("echo", {"text": "a"}))
                hung = await episode.call("hang", {"seconds": 60})
                after = _pid(await episode.call("echo", {"text": "b"}))
            await _gone(before)
    assert hung.is_error and hung.error_kind == "timeout"
    assert after != before and episode.restarts == {"crashy": 1}


# --------------------------------------------------------------------------- configuration


def test_the_bundled_config_marks_music_and_files_stateful() -> None:
    config = load_config(ROOT / "servers" / "mcp.json")
    assert {name for name, server in config.items() if server.stateful} == {"music", "files"}
    assert config["files"].args[-1] == "{state_dir}"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"stateful": "yes"}, '"stateful" must be true or false'),
        ({"stateful": True, "pool_size": -1}, '"pool_size" must be a whole number'),
        ({"stateful": True, "pool_size": 1.5}, '"pool_size" must be a whole number'),
        ({"pool_size": 2}, 'add "stateful": true'),
    ],
)
def test_state_options_errors_say_what_is_wrong(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(x={"command": "python", **entry})


def test_a_stateful_in_memory_server_needs_a_factory() -> None:
    from servers.music import make_server

    config = ServerConfig(name="music", server=make_server(), stateful=True)
    with pytest.raises(ConfigError, match="function that makes a fresh server"):
        ToolHub({"music": config})


@pytest.mark.anyio
async def test_episodes_refuse_unknown_servers_and_an_unopened_hub() -> None:
    from servers.music import make_server

    hub = ToolHub.in_memory({"music": make_server})
    with pytest.raises(RuntimeError, match="async with"):
        async with hub.episode():
            pass
    async with hub:
        with pytest.raises(ConfigError, match="unknown server"):
            async with hub.episode(["nope"]):
                pass
        async with hub.episode(["music"]) as episode:
            with pytest.raises(ConfigError, match="not part of this episode"):
                episode.tools(["weather"])


@pytest.mark.anyio
async def test_a_hub_without_episodes_starts_no_pool() -> None:
    before = _children()
    async with ToolHub(_config(crashy=CRASHY), pool_size=2) as hub:
        with anyio.fail_after(60):
            shared = _pid(await hub.call("echo", {"text": "hub"}))
            assert _children() - before == {shared} and hub.pooled() == {"crashy": 0}
            async with hub.episode():
                pass
            await hub.warm()
            assert hub.pooled() == {"crashy": 2}


@pytest.mark.anyio
async def test_an_episode_cancelled_while_its_server_starts_leaves_no_process() -> None:
    before = _children()
    async with ToolHub(_config(crashy=CRASHY), pool_size=0) as hub:
        with anyio.fail_after(60):
            shared = _pid(await hub.call("echo", {"text": "hub"}))
            with anyio.move_on_after(0.05) as scope:
                async with hub.episode():
                    pytest.fail("the episode should not open before its server started")
            assert scope.cancelled_caught
            while _children() - before != {shared}:  # the half-started server is stopped
                await anyio.sleep(0.05)


KILLED_HUB = """
import anyio, sys
from sandbox.hub import ToolHub, load_config
scratch = {"command": "python", "args": ["-m", "servers.files", "{state_dir}"], "cwd": sys.argv[1]}
config = load_config({"mcpServers": {"scratch": scratch}})
async def main():
    async with ToolHub(config) as hub:
        print(hub.log_path, flush=True)
        await anyio.sleep(600)
anyio.run(main)
"""


def test_what_a_killed_run_left_is_removed_when_the_next_hub_opens(tmp_path: Path) -> None:
    """Issue 14: after a SIGKILL the state folder and the server log stay; the next hub removes
    them, and leaves alone what a running process (this one) and other names own."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_HUB, str(ROOT)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        log = Path(child.stdout.readline().strip())
    finally:
        child.kill()
        child.wait()
    left = sorted(path.name for path in tmp_path.iterdir())
    assert log.name in left and log.parent == tmp_path
    assert [name for name in left if name.startswith(f"sandbox-scratch-pid{child.pid}-")]
    mine = tmp_path / f"sandbox-scratch-pid{os.getpid()}-abc123"  # a live owner: kept
    mine.mkdir()
    other = tmp_path / "sandbox-notes"  # no owner in the name: not the hub's
    other.mkdir()
    removed = remove_leftovers(tmp_path)
    assert sorted(path.name for path in removed) == left
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([mine.name, other.name])


@pytest.mark.anyio
async def test_a_clean_run_leaves_no_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scratch = {"command": "python", "args": ["-m", "servers.files", "{state_dir}"], "cwd": str(ROOT)}
    async with ToolHub(_config(scratch=scratch), call_timeout=20) as hub:
        assert hub.log_path.parent == tmp_path and hub.log_path.exists()
        await hub.call("list_files", {})
    assert list(tmp_path.iterdir()) == []
