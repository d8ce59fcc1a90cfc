"""tether.dump() shows the children of a gather under the task that awaits it
(#21 item 8: the tree stopped at a run_all and hid the children doing the work).

Every gather of the family runs on one engine, so each is drawn the same way: a
line for the call, then each running child with its own await chain, and the
gathers that child awaits in turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

import tether
from tether import TaskRegistry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

pytestmark = pytest.mark.anyio


async def fetch_page(release: anyio.Event, n: int) -> int:
    await release.wait()
    return n


async def check_site(release: anyio.Event, site: str) -> str:
    await release.wait()
    return site


async def fan_out(release: anyio.Event) -> tuple[int, ...]:
    return await tether.run_all(*(fetch_page(release, n) for n in range(3)), limit=2)


async def dump_when_blocked(release: anyio.Event, dumps: list[str]) -> None:
    await anyio.wait_all_tasks_blocked()
    dumps.append(tether.dump())
    release.set()


async def test_a_run_all_in_a_task_shows_its_children_and_their_await_chains() -> None:
    release = anyio.Event()
    dumps: list[str] = []
    async with TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(fan_out, release, name="crawler")
        tasks.spawn(dump_when_blocked, release, dumps, name="dumper")
        assert await handle == (0, 1, 2)
    lines = dumps[0].splitlines()
    assert lines[0].startswith("TaskRegistry 'app' OPEN for ")
    assert lines[1].startswith("├── crawler RUNNING: suspended at fan_out (")
    assert lines[2] == (
        "│   └── run_all (limit 2): 2 running, 0 done, 1 not started, of 3"
    )
    assert lines[3].startswith("│       ├── input 1: suspended at fetch_page (")
    assert lines[4].startswith("│       └── input 2: suspended at fetch_page (")
    assert lines[5].startswith("└── dumper RUNNING")
    assert len(lines) == 6
    assert tether.dump() == "no open TaskRegistry"


async def test_a_registrys_own_dump_shows_them_too() -> None:
    release = anyio.Event()
    text = ""
    async with TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(fan_out, release, name="crawler")
        await anyio.wait_all_tasks_blocked()
        text = tasks.dump()
        release.set()
        await handle
    assert "└── run_all (limit 2): 2 running" in text
    assert "input 2: suspended at fetch_page (" in text


async def test_a_gather_inside_a_gather_is_drawn_under_its_child() -> None:
    release = anyio.Event()

    async def shard(n: int) -> tuple[int, ...]:
        results = await tether.settle_all(fetch_page(release, n))
        return tuple(r for r in results if isinstance(r, int))

    async def crawl() -> tuple[tuple[int, ...], ...]:
        return await tether.run_all(shard(0), shard(1))

    dumps: list[str] = []
    async with TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(crawl, name="crawler")
        tasks.spawn(dump_when_blocked, release, dumps, name="dumper")
        assert await handle == ((0,), (1,))
    lines = dumps[0].splitlines()
    assert lines[2] == "│   └── run_all: 2 running, 0 done, 0 not started, of 2"
    assert lines[3].startswith("│       ├── input 1: suspended at ")
    assert "shard" in lines[3]
    assert lines[4] == (
        "│       │   └── settle_all: 1 running, 0 done, 0 not started, of 1"
    )
    assert lines[5].startswith("│       │       └── input 1: suspended at fetch_page")
    assert lines[6].startswith("│       └── input 2: suspended at ")
    assert lines[8].startswith("│               └── input 1: suspended at fetch_page")


async def test_an_amap_read_outside_every_registry_is_its_own_tree() -> None:
    # The CLI's shape: the main task reads an amap; no registry is open.
    release = anyio.Event()
    dump = ""
    got: list[str] = []

    async def check(site: str) -> str:
        return await check_site(release, site)

    async with tether.amap(check, ["a.test", "b.test"], limit=8) as results:
        await anyio.wait_all_tasks_blocked()
        dump = tether.dump()
        release.set()
        got = sorted([site async for site, _ in results])
    assert got == ["a.test", "b.test"]
    lines = dump.splitlines()
    assert lines[0].startswith("task ")
    assert lines[0].endswith(" (in no registry)")
    assert lines[1] == ("└── amap (limit 8): 2 running, 0 result(s) waiting to be read")
    assert lines[2].startswith("    ├── a.test: suspended at ")
    assert "check_site (" in lines[2]
    assert lines[3].startswith("    └── b.test: suspended at ")
    assert tether.dump() == "no open TaskRegistry"


@pytest.mark.parametrize("api", ["race", "as_completed"])
async def test_race_and_as_completed_show_their_children(api: str) -> None:
    release = anyio.Event()
    dump = ""

    async def run(*work: Callable[[], Awaitable[Any]]) -> None:
        if api == "race":
            await tether.race(*work)
        else:
            async with tether.as_completed(*work) as done:
                async for _ in done:
                    pass

    async def dumper() -> None:
        nonlocal dump
        await anyio.wait_all_tasks_blocked()
        dump = tether.dump()
        release.set()

    async with anyio.create_task_group() as group:
        group.start_soon(dumper)
        await run(lambda: fetch_page(release, 1), lambda: fetch_page(release, 2))
    assert f"── {api}" in dump
    assert ": 2 running" in dump
    assert dump.count(": suspended at fetch_page (") == 2


async def test_amaps_driver_is_drawn_while_it_waits_for_the_next_item() -> None:
    release = anyio.Event()

    async def slow_sites() -> AsyncIterator[str]:
        yield "a.test"
        await release.wait()  # the next site is slow to come

    async def check(site: str) -> str:
        return site

    dump = ""
    async with tether.amap(check, slow_sites(), limit=4) as results:
        assert [site async for site, _ in _first(results)] == ["a.test"]
        await anyio.wait_all_tasks_blocked()
        dump = tether.dump()
        release.set()
        assert [site async for site, _ in results] == []
    assert "── reading the items: suspended at " in dump
    assert "slow_sites (" in dump  # where the async generator waits


async def test_dump_from_another_thread_sees_the_gather() -> None:
    release = anyio.Event()
    dump = ""

    async def dumper() -> None:
        nonlocal dump
        await anyio.wait_all_tasks_blocked()
        dump = await anyio.to_thread.run_sync(tether.dump)
        release.set()

    async with anyio.create_task_group() as group:
        group.start_soon(dumper)
        await tether.settle_all(fetch_page(release, 1), fetch_page(release, 2))
    assert "settle_all: 2 running, 0 done, 0 not started, of 2" in dump


async def _first(
    results: tether.Completions[str, str],
) -> AsyncIterator[tuple[str, str]]:
    yield await results.__anext__()


@pytest.mark.parametrize("api", ["amap", "as_completed"])
async def test_a_stream_read_to_its_end_is_no_longer_drawn(api: str) -> None:
    """Leaving a block whose inputs had all ended and been read skips the close;
    the stream must still leave the tree (it stayed there, drawn forever)."""

    async def check(site: str) -> str:
        return site

    if api == "amap":
        async with tether.amap(check, ["a.test"], limit=2) as results:
            assert [site async for site, _ in results] == ["a.test"]
    else:
        async with tether.as_completed(check("a.test")) as done:
            assert [result async for _, result in done] == ["a.test"]
    assert tether.dump() == "no open TaskRegistry"
