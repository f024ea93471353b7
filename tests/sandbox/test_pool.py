"""The warm pool on its own, with plain items whose starts the test releases one by one."""

import anyio
import pytest

from sandbox.hub import PoolClosedError, WarmPool


class Item:
    def __init__(self, number: int) -> None:
        self.number = number
        self.alive = True
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.alive = False


class Opener:
    """Makes numbered items; each start waits for ``release`` when ``gated``."""

    def __init__(self, gated: bool = False, fail: bool = False) -> None:
        self.opened: list[Item] = []
        self.gated = gated
        self.fail = fail
        self.release = anyio.Event()

    async def __call__(self) -> Item:
        if self.gated:
            await self.release.wait()
        if self.fail:
            raise RuntimeError("cannot start")
        item = Item(len(self.opened))
        self.opened.append(item)
        return item


@pytest.mark.anyio
async def test_a_pool_fills_hands_out_once_and_refills() -> None:
    opener = Opener()
    async with anyio.create_task_group() as group:
        pool = WarmPool("x", 2, opener)
        pool.start(group)
        with anyio.fail_after(5):
            await pool.warm()
            first = await pool.take()
            second = await pool.take()
            await pool.warm()
        assert pool.ready == 2 and first is not second
        assert {first.number, second.number} == {0, 1} and len(opener.opened) == 4
        pool.close()
    assert all(item.closed for item in opener.opened[2:])  # the waiting ones
    assert not first.closed and not second.closed  # handed out: their users close them


@pytest.mark.anyio
async def test_size_zero_starts_one_item_per_take() -> None:
    opener = Opener()
    async with anyio.create_task_group() as group:
        pool = WarmPool("x", 0, opener)
        pool.start(group)
        items = [await pool.take() for _ in range(3)]
        assert pool.ready == 0
    assert [item.number for item in items] == [0, 1, 2] and len(opener.opened) == 3


@pytest.mark.anyio
async def test_an_empty_pool_hands_out_a_start_already_under_way() -> None:
    opener = Opener(gated=True)
    async with anyio.create_task_group() as group:
        pool = WarmPool("x", 1, opener)
        pool.start(group)  # one start under way, held at the gate
        taken: list[Item] = []

        async def take() -> None:
            taken.append(await pool.take())

        group.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        opener.release.set()
        with anyio.fail_after(5):
            await pool.warm()
        pool.close()
    # the taker got the first start; the pool started one replacement, not one for the taker too
    assert [item.number for item in taken] == [0] and len(opener.opened) == 2


@pytest.mark.anyio
async def test_dead_items_are_skipped_and_failures_are_raised() -> None:
    opener = Opener()
    async with anyio.create_task_group() as group:
        pool = WarmPool("x", 1, opener)
        pool.start(group)
        await pool.warm()
        opener.opened[0].alive = False  # died while it waited
        assert pool.ready == 0
        item = await pool.take()
        assert item.number != 0 and opener.opened[0].closed
        opener.fail = True
        with pytest.raises(RuntimeError, match="cannot start"):
            await pool.warm()
        with pytest.raises(RuntimeError, match="cannot start"):
            await pool.take()
        pool.close()
        with pytest.raises(PoolClosedError, match="closed"):
            await pool.take()


@pytest.mark.anyio
async def test_an_item_whose_taker_was_cancelled_is_closed() -> None:
    opener = Opener(gated=True)
    async with anyio.create_task_group() as group:
        pool = WarmPool("x", 1, opener)
        pool.start(group)
        with anyio.move_on_after(0.05):
            await pool.take()  # claims the start under way, then gives up
        opener.release.set()
        with anyio.fail_after(5):
            await pool.warm()
        pool.close()
    assert opener.opened[0].closed  # nobody holds it, so it is not left open
    assert len(opener.opened) == 2


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        WarmPool("x", -1, Opener())
