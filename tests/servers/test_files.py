"""The files server: reading, writing, listing and searching, and every way out of the root refused."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from sandbox.hub import ToolHub, load_config
from servers.files import FileLimits, Folder, main, make_server

SECRET = "outside-secret-7f3a"


def _text(result: CallToolResult) -> str:
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def _ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert result.is_error is False, _text(result)
    assert result.structured_content is not None
    return result.structured_content


async def _refused(client: Client, name: str, arguments: dict[str, Any], *words: str) -> str:
    """The call is an is_error result naming the reason, and the server still answers afterwards."""
    result = await client.call_tool(name, arguments)
    text = _text(result)
    assert result.is_error is True, text
    for word in words:
        assert word in text, text
    assert SECRET not in text
    assert (await _ok(client, "list_files", {"path": "."}))["path"] == "."
    return text


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the root, holding a file the server must never read or change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    return folder


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    (folder / "notes.txt").write_text("first line\nSecond Line with TODO\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.md").write_text("# deep\nnothing to do here\n")
    return folder


# --------------------------------------------------------------------------- what works


@pytest.mark.anyio
async def test_write_then_read_creates_folders(root: Path) -> None:
    async with Client(make_server(root)) as client:
        written = await _ok(client, "write_file", {"path": "a/b/c.txt", "content": "héllo\n"})
        again = await _ok(client, "write_file", {"path": "a/b/c.txt", "content": "more\n", "append": True})
        read = await _ok(client, "read_file", {"path": "a/b/c.txt"})
    assert written == {"path": "a/b/c.txt", "bytes_written": 7, "size_bytes": 7, "created": True}
    assert again["created"] is False and again["size_bytes"] == 12
    assert read["text"] == "héllo\nmore\n"
    assert read["truncated"] is False and read["next_offset"] is None
    assert (root / "a" / "b" / "c.txt").read_text() == "héllo\nmore\n"


@pytest.mark.anyio
async def test_overwrite_replaces_the_whole_file(root: Path) -> None:
    async with Client(make_server(root)) as client:
        await _ok(client, "write_file", {"path": "notes.txt", "content": "short"})
    assert (root / "notes.txt").read_text() == "short"


@pytest.mark.anyio
async def test_long_file_is_read_in_parts_without_splitting_characters(root: Path) -> None:
    text = "αβγ-" * 40  # two-byte letters, so a 25-byte cut lands inside one
    (root / "greek.txt").write_text(text)
    parts: list[str] = []
    async with Client(make_server(root, FileLimits(max_read_bytes=25))) as client:
        offset: int | None = 0
        while offset is not None:
            part = await _ok(client, "read_file", {"path": "greek.txt", "offset": offset})
            assert "\ufffd" not in part["text"]
            parts.append(part["text"])
            offset = part["next_offset"]
    assert len(parts) > 5
    assert "".join(parts) == text


@pytest.mark.anyio
async def test_listing_flat_recursive_and_capped(root: Path) -> None:
    async with Client(make_server(root, FileLimits(max_results=2))) as capped:
        short = await _ok(capped, "list_files", {"path": ".", "recursive": True})
    async with Client(make_server(root)) as client:
        flat = await _ok(client, "list_files", {"path": "."})
        deep = await _ok(client, "list_files", {"path": ".", "recursive": True})
        sub = await _ok(client, "list_files", {"path": "sub"})
    assert flat["entries"] == [
        {"path": "notes.txt", "kind": "file", "size_bytes": 33},
        {"path": "sub", "kind": "folder", "size_bytes": None},
    ]
    assert [e["path"] for e in deep["entries"]] == ["notes.txt", "sub", "sub/deep.md"]
    assert sub["entries"] == [{"path": "sub/deep.md", "kind": "file", "size_bytes": 26}]
    assert short["truncated"] is True and len(short["entries"]) == 2


@pytest.mark.anyio
async def test_search_finds_names_and_lines(root: Path) -> None:
    async with Client(make_server(root)) as client:
        todo = await _ok(client, "search_files", {"query": "todo"})
        exact = await _ok(client, "search_files", {"query": "todo", "case_sensitive": True})
        named = await _ok(client, "search_files", {"query": "deep"})
        pattern = await _ok(client, "search_files", {"query": r"^#\s+\w+$", "regex": True})
        literal = await _ok(client, "search_files", {"query": "(.*"})
    assert todo["matches"] == [{"path": "notes.txt", "line": 2, "text": "Second Line with TODO"}]
    assert exact["matches"] == []
    assert named["matches"][0] == {"path": "sub/deep.md", "line": None, "text": "sub/deep.md"}
    assert {"path": "sub/deep.md", "line": 1, "text": "# deep"} in named["matches"]
    assert pattern["matches"] == [{"path": "sub/deep.md", "line": 1, "text": "# deep"}]
    assert literal["matches"] == [] and todo["files_searched"] == 2


@pytest.mark.anyio
async def test_search_stops_at_the_result_cap(root: Path) -> None:
    (root / "many.txt").write_text("x\n" * 50)
    async with Client(make_server(root, FileLimits(max_results=5))) as client:
        found = await _ok(client, "search_files", {"query": "x"})
    assert len(found["matches"]) == 5 and found["truncated"] is True


@pytest.mark.anyio
async def test_symlink_that_stays_inside_is_followed(root: Path) -> None:
    (root / "alias.txt").symlink_to("notes.txt")
    (root / "subalias").symlink_to(root / "sub")
    async with Client(make_server(root)) as client:
        read = await _ok(client, "read_file", {"path": "alias.txt"})
        deep = await _ok(client, "read_file", {"path": "subalias/deep.md"})
        listed = await _ok(client, "list_files", {"path": "."})
    assert read["path"] == "notes.txt" and read["text"].startswith("first line")
    assert deep["path"] == "sub/deep.md"
    assert {"path": "alias.txt", "kind": "symlink", "size_bytes": None} in listed["entries"]


def test_root_is_created_and_a_file_root_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_server(tmp_path / "new" / "root")
    assert (tmp_path / "new" / "root").is_dir()
    (tmp_path / "plain").write_text("x")
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "plain")])
    assert stopped.value.code == 2
    assert "not a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- escapes


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside/secret.txt", "outside the root"),
        ("sub/../../outside/secret.txt", "outside the root"),
        ("../../../../../../etc/passwd", "outside the root"),
        ("/etc/passwd", "absolute path"),
        ("notes.txt\x00.png", "NUL byte"),
        ("missing.txt", "does not exist"),
        ("sub", "is a folder"),
    ],
)
async def test_bad_paths_are_refused_for_read(root: Path, path: str, reason: str) -> None:
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": path}, reason)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["../outside/new.txt", "/tmp/new.txt", "sub/../../escape.txt"])
async def test_writes_outside_are_refused(root: Path, tmp_path: Path, path: str) -> None:
    async with Client(make_server(root)) as client:
        await _refused(client, "write_file", {"path": path, "content": "x"}, "root")
    assert not (tmp_path / "outside" / "new.txt").exists()
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.anyio
async def test_symlink_to_a_file_outside_is_refused(root: Path, outside: Path) -> None:
    (root / "link.txt").symlink_to(outside / "secret.txt")
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": "link.txt"}, "symbolic link")
        await _refused(client, "write_file", {"path": "link.txt", "content": "pwned"}, "symbolic link")
        found = await _ok(client, "search_files", {"query": SECRET})
    assert (outside / "secret.txt").read_text() == SECRET
    assert found["matches"] == []


@pytest.mark.anyio
async def test_symlink_to_a_folder_outside_is_refused(root: Path, outside: Path) -> None:
    (root / "door").symlink_to(outside)
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": "door/secret.txt"}, "symbolic link")
        await _refused(client, "list_files", {"path": "door"}, "symbolic link")
        await _refused(client, "write_file", {"path": "door/planted.txt", "content": "x"}, "symbolic link")
        await _refused(client, "search_files", {"query": "secret", "path": "door"}, "symbolic link")
        everything = await _ok(client, "list_files", {"path": ".", "recursive": True})
        found = await _ok(client, "search_files", {"query": SECRET})
    assert not (outside / "planted.txt").exists()
    assert {"path": "door", "kind": "symlink", "size_bytes": None} in everything["entries"]
    assert not any(e["path"].startswith("door/") for e in everything["entries"])
    assert found["matches"] == []


@pytest.mark.anyio
async def test_symlink_chain_out_is_refused(root: Path, outside: Path) -> None:
    (root / "c.txt").symlink_to(outside / "secret.txt")
    (root / "sub" / "b.txt").symlink_to("../c.txt")
    (root / "a.txt").symlink_to("sub/b.txt")
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": "a.txt"}, "symbolic link")
        await _refused(client, "write_file", {"path": "a.txt", "content": "pwned"}, "symbolic link")
    assert (outside / "secret.txt").read_text() == SECRET


@pytest.mark.anyio
async def test_dangling_symlink_out_is_not_created_through(root: Path, outside: Path) -> None:
    (root / "trap.txt").symlink_to(outside / "created-by-model.txt")
    async with Client(make_server(root)) as client:
        await _refused(client, "write_file", {"path": "trap.txt", "content": "x"}, "symbolic link")
    assert not (outside / "created-by-model.txt").exists()


@pytest.mark.anyio
async def test_symlink_loop_is_a_clear_error(root: Path) -> None:
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": "loop1"}, "symbolic link")


@pytest.mark.anyio
async def test_hard_link_to_a_file_outside_is_refused(root: Path, outside: Path) -> None:
    os.link(outside / "secret.txt", root / "hard.txt")
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": "hard.txt"}, "hard links")
        await _refused(client, "write_file", {"path": "hard.txt", "content": "pwned"}, "hard links")
        await _refused(
            client, "write_file", {"path": "hard.txt", "content": "x", "append": True}, "hard links"
        )
        found = await _ok(client, "search_files", {"query": SECRET})
    assert (outside / "secret.txt").read_text() == SECRET
    assert found["matches"] == [] and found["files_skipped"] == 1


@pytest.mark.anyio
async def test_fifo_is_refused_without_blocking(root: Path) -> None:
    os.mkfifo(root / "pipe")
    async with Client(make_server(root)) as client:
        with anyio.fail_after(10):
            await _refused(client, "read_file", {"path": "pipe"}, "not a regular file")
            await _refused(client, "write_file", {"path": "pipe", "content": "x"}, "pipe")


@pytest.mark.anyio
async def test_huge_writes_are_refused(root: Path) -> None:
    async with Client(make_server(root, FileLimits(max_write_bytes=1000))) as client:
        await _refused(client, "write_file", {"path": "big.txt", "content": "x" * 5000}, "at most 1000")
        # 600 characters, 1200 bytes: within the schema's length, over the byte limit
        await _refused(client, "write_file", {"path": "big.txt", "content": "é" * 600}, "1200 bytes")
    assert not (root / "big.txt").exists()


@pytest.mark.anyio
async def test_folder_quota_stops_growth(root: Path) -> None:
    async with Client(make_server(root, FileLimits(max_total_bytes=200))) as client:
        await _ok(client, "write_file", {"path": "a.txt", "content": "x" * 100})
        await _refused(client, "write_file", {"path": "b.txt", "content": "x" * 100}, "limit of 200 bytes")
        await _ok(client, "write_file", {"path": "a.txt", "content": "y" * 100})  # replacing does not grow


@pytest.mark.anyio
async def test_catastrophic_regex_is_stopped(root: Path) -> None:
    (root / "as.txt").write_text("a" * 40 + "!\n")
    async with Client(make_server(root, FileLimits(search_timeout_s=1.0))) as client:
        await _refused(client, "search_files", {"query": "(a+)+$", "regex": True}, "longer than 1 s")
        await _refused(client, "search_files", {"query": "(unclosed", "regex": True}, "not a valid regular")


@pytest.mark.anyio
async def test_paths_deeper_than_the_cap_are_refused_and_nothing_is_made(root: Path) -> None:
    before = sorted(root.rglob("*"))
    deep = "d/" * 505  # 1,010 characters: within the path length, far past the depth cap
    async with Client(make_server(root)) as client:
        for number in range(8):
            await _refused(
                client, "write_file", {"path": f"{deep}f{number}", "content": ""}, "506 levels", "at most 32"
            )
        assert sorted(root.rglob("*")) == before  # not one folder of the 505 was made
        at_the_cap = await _ok(client, "write_file", {"path": "d/" * 31 + "f", "content": ""})
        await _refused(client, "write_file", {"path": "d/" * 32 + "f", "content": ""}, "33 levels")
    assert at_the_cap["created"] is True
    assert max(len(p.relative_to(root).parts) for p in root.rglob("*")) == 32


def _disk_bytes(root: Path) -> int:
    return sum(os.lstat(path).st_blocks * 512 for path in root.rglob("*"))


@pytest.mark.anyio
async def test_empty_files_and_folders_count_as_entries(root: Path) -> None:
    # 3 entries are there already: notes.txt, sub, sub/deep.md
    limits = FileLimits(max_total_bytes=200_000, max_entries=40)
    made = 0
    async with Client(make_server(root, limits)) as client:
        while True:
            result = await client.call_tool("write_file", {"path": f"e/{made // 8}/{made}", "content": ""})
            if result.is_error:
                break
            made += 1
        text = _text(result)
        await _refused(client, "write_file", {"path": "x/y/z.txt", "content": ""}, "limit of 40")
        rewritten = await _ok(client, "write_file", {"path": "notes.txt", "content": "still writable"})
    entries = list(root.rglob("*"))
    assert "files and folders" in text and "limit of 40" in text
    assert len(entries) == 40 and not (root / "x").exists()
    assert rewritten["created"] is False
    # What the red team measured: 18.8 MB of folders under a 200 kB cap. Now: the content cap plus a
    # block per entry at most (ext4 and tmpfs give a folder one 4 kB block, an empty file none).
    assert _disk_bytes(root) <= limits.max_total_bytes + limits.max_entries * 4096


@pytest.mark.anyio
async def test_a_write_does_not_walk_the_tree(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in range(50):
        for file in range(20):
            (root / "wide" / str(folder)).mkdir(parents=True, exist_ok=True)
            (root / "wide" / str(folder) / f"{file}.txt").write_text("x")
    async with Client(make_server(root, FileLimits(max_total_bytes=2_000))) as client:
        listings: list[object] = []
        real_scandir = os.scandir

        def counting(*args: Any) -> Any:
            listings.append(args)
            return real_scandir(*args)

        monkeypatch.setattr(os, "scandir", counting)
        for number in range(20):
            await _ok(client, "write_file", {"path": f"deep/{number}/new.txt", "content": "y" * 10})
        refused = await client.call_tool("write_file", {"path": "big.txt", "content": "z" * 900})
        monkeypatch.setattr(os, "scandir", real_scandir)
    assert listings == []  # the 1,000 files were counted once, at start-up
    assert refused.is_error and "holds 1259 bytes" in _text(refused)  # 1,000 + 20 × 10 + the fixture's 59


@settings(max_examples=40, deadline=None)
@given(
    writes=st.lists(
        st.tuples(
            st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4).map("/".join),
            st.integers(0, 300),
            st.booleans(),
        ),
        max_size=12,
    )
)
def test_the_kept_count_matches_a_fresh_count(writes: list[tuple[str, int, bool]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        kept = Folder(folder, FileLimits(max_total_bytes=2_000, max_entries=12))
        for path, size, append in writes:
            with contextlib.suppress(ToolError):  # refusals (caps, a file where a folder is) are fine
                kept.write(path, "é" * size, append)
            assert kept.usage == Folder(folder, FileLimits()).usage
        assert kept.usage.bytes <= 2_000 and kept.usage.entries <= 12


@pytest.mark.anyio
async def test_out_of_range_numbers_and_patterns_are_refused_with_the_reason(root: Path) -> None:
    async with Client(make_server(root)) as client:
        await _refused(client, "read_file", {"path": "notes.txt", "offset": 10**30}, "less than or equal")
        far = await _ok(client, "read_file", {"path": "notes.txt", "offset": 2**62})
        end = await _ok(client, "read_file", {"path": "notes.txt", "offset": 2**63 - 1})
        await _refused(
            client, "search_files", {"query": "a{99999999999}", "regex": True}, "not a valid regular"
        )
    assert far["text"] == end["text"] == "" and far["truncated"] is False and far["size_bytes"] == 33


def test_symlink_swapped_in_after_the_check_is_not_followed(root: Path, outside: Path) -> None:
    # The race a path check alone would lose: the path is resolved while 'sub' is a real folder, then
    # 'sub' becomes a symlink out before the open. The component-wise O_NOFOLLOW open refuses it.
    folder = Folder(root, FileLimits())
    checked = folder.parts("sub/secret.txt")
    (root / "sub" / "deep.md").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(outside)
    folder.parts = lambda path: checked  # type: ignore[method-assign]
    with pytest.raises(ToolError, match=r"symbolic link|not a folder"):
        folder.read("sub/secret.txt", 0)
    with pytest.raises(ToolError, match=r"symbolic link|not a folder"):
        folder.write("sub/secret.txt", "pwned", append=False)
    assert (outside / "secret.txt").read_text() == SECRET


# --------------------------------------------------------------------------- over stdio


@pytest.mark.anyio
async def test_files_over_stdio_through_the_hub(tmp_path: Path) -> None:
    root = tmp_path / "runs" / "files"
    config = {
        "mcpServers": {
            "files": {
                "command": "python",
                "args": ["-m", "servers.files", "runs/files"],
                "cwd": str(tmp_path),
            }
        }
    }
    with anyio.fail_after(60):
        async with ToolHub(load_config(config), call_timeout=20) as hub:
            written = await hub.call("write_file", {"path": "hello.txt", "content": "hi from stdio"})
            read = await hub.call("read_file", {"path": "hello.txt"})
            escape = await hub.call("read_file", {"path": "../../../etc/passwd"})
            after = await hub.call("list_files", {"path": "."})
    assert not written.is_error, written.text
    assert read.structured is not None and read.structured["text"] == "hi from stdio"
    assert escape.is_error and "outside the root" in escape.text
    assert not after.is_error
    assert (root / "hello.txt").read_text() == "hi from stdio"


# --------------------------------------------------------------------------- the state resource


async def _state(client: Client) -> dict[str, Any]:
    result = await client.read_resource("files://state")
    return json.loads(result.contents[0].text)  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_state_resource_shows_files_and_text_but_not_outside(root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside / "secret.txt")
    async with Client(make_server(root)) as client:
        await _ok(client, "write_file", {"path": "todo/list.txt", "content": "buy milk\n"})
        state = await _state(client)
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert state["files"] == {
        "notes.txt": "first line\nSecond Line with TODO\n",
        "sub/deep.md": "# deep\nnothing to do here\n",
        "todo/list.txt": "buy milk\n",
    }
    assert state["folders"] == ["sub", "todo"]
    assert state["truncated"] is False
    assert SECRET not in json.dumps(state)
    assert tools == {"read_file", "write_file", "list_files", "search_files"}
