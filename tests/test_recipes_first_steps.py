"""The recipes of the recipes page, run as the docs show them: a registry around
``main`` on asyncio and trio, a library's private registry, bounded fan-out with
``amap``, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

import tether
from recipes.entry import run_on_asyncio, run_on_trio
from recipes.fan_out import every_path, total_size
from recipes.library_client import Client
from recipes.sigterm import serve_until_signal
from tether import RegistryState, TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.mark.parametrize("run", [run_on_asyncio, run_on_trio])
def test_main_waits_for_what_it_spawned(run: Callable[[list[str]], None]) -> None:
    log: list[str] = []
    run(log)
    assert log == ["main goes on", "cache refreshed", "every task has ended"]


@pytest.mark.anyio
async def test_a_library_registry_stays_out_of_its_users_spawns() -> None:
    spawned_into: list[TaskRegistry] = []

    async def on_event(event: str) -> None:
        # The user's handler spawns: into the user's registry, not the client's.
        tether.spawn(anyio.lowlevel.checkpoint)
        spawned_into.append(tether.current_registry())

    async with TaskRegistry(name="user", shutdown_timeout=10) as user_tasks:
        client = Client(on_event)
        await client.start()
        assert tether.current_registry() is user_tasks  # start() bound nothing
        client.dispatch("ready")
        await client.close()
    assert spawned_into == [user_tasks]


@pytest.mark.anyio
async def test_fan_out_sums_every_input() -> None:
    paths = [f"data/{n:07}.bin" for n in range(1000)]
    assert await total_size(iter(paths)) == sum(map(len, paths))


def test_the_large_input_is_made_lazily() -> None:
    assert next(iter(every_path())) == "data/0000000.bin"


@pytest.mark.anyio
async def test_sigterm_stops_taking_work_and_drains_the_work_in_flight() -> None:
    log: list[str] = []
    registries: list[TaskRegistry] = []
    started, release = anyio.Event(), anyio.Event()

    async def job() -> None:
        started.set()
        await release.wait()
        log.append("job finished")

    async def accept(tasks: TaskRegistry) -> None:
        registries.append(tasks)
        tasks.spawn(job)
        try:
            await anyio.sleep_forever()
        finally:
            log.append("stopped accepting")

    async def send_sigterm() -> None:
        await started.wait()
        os.kill(os.getpid(), signal.SIGTERM)
        # The job is released only once the registry drains: it was waited for.
        while registries[0].state is not RegistryState.DRAINING:
            await anyio.lowlevel.checkpoint()
        release.set()

    async with anyio.create_task_group() as group:
        group.start_soon(send_sigterm)
        await serve_until_signal(accept)
    assert log == ["stopped accepting", "job finished"]
