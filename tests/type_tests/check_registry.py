"""Never executed: mypy --strict and pyright strict check these types.

Positives use ``assert_type``; negatives carry ``# type: ignore[code]`` and, with
unused-ignore warnings on, fail the check if they ever stop being errors.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Any

from typing_extensions import assert_type

import tether
from tether import Handle, RegistryStatistics, TaskRegistry


async def fetch(url: str, retries: int) -> bytes:
    return url.encode() * retries


async def one(url: str) -> bytes:
    return url.encode()


async def nothing() -> None:
    return None


def blocking(url: str) -> bytes:
    return url.encode()


async def positives(tasks: TaskRegistry) -> None:
    by_args = tasks.spawn(fetch, "u", 3)
    assert_type(by_args, Handle[bytes])
    assert_type(tasks.spawn(fetch("u", 3)), Handle[bytes])
    assert_type(tasks.spawn(fetch, "u", 3, name="n"), Handle[bytes])
    assert_type(tasks.spawn(nothing), Handle[None])
    assert_type(tasks.spawn(functools.partial(fetch, retries=2), "u"), Handle[bytes])
    assert_type(tether.spawn(fetch, "u", 3), Handle[bytes])
    assert_type(tether.spawn(fetch("u", 3)), Handle[bytes])
    assert_type(await tasks.spawn_when_free(fetch, "u", 3), Handle[bytes])
    assert_type(await tasks.spawn_when_free(fetch("u", 3)), Handle[bytes])
    assert_type(await by_args, bytes)
    assert_type(by_args.result(), bytes)
    assert_type(by_args.exception(), BaseException | None)
    assert_type(by_args.done(), bool)
    assert_type(by_args.status, tether.Status)
    assert_type(await by_args.wait(), None)
    assert_type(
        tasks.spawn_threadsafe(fetch, "u", 3), concurrent.futures.Future[Handle[bytes]]
    )
    assert_type(
        tasks.spawn_threadsafe(fetch("u", 3)), concurrent.futures.Future[Handle[bytes]]
    )
    assert_type(tasks.state, tether.RegistryState)
    assert_type(tasks.limit, int | None)
    assert_type(len(tasks), int)
    assert_type(tasks.__bool__(), bool)  # always true, empty or not
    assert_type(list(tasks), list[Handle[Any]])
    assert_type(tasks.statistics(), RegistryStatistics)
    assert_type(tether.current_registry(), TaskRegistry)
    with tasks.bind() as bound:
        assert_type(bound, TaskRegistry)
    async with TaskRegistry(on_error=lambda handle, exc: None) as entered:
        assert_type(entered, TaskRegistry)
    # 0.2: a lifetime beyond one block, private registries, daemon tasks.
    private = TaskRegistry(name="library", ambient=False)
    assert_type(await private.open(), None)
    assert_type(await private.aclose(), None)
    assert_type(tasks.spawn(fetch, "u", 3, daemon=True), Handle[bytes])
    assert_type(tasks.spawn(fetch("u", 3), daemon=True), Handle[bytes])
    assert_type(tether.spawn(fetch, "u", 3, daemon=True), Handle[bytes])
    assert_type(await tasks.spawn_when_free(fetch, "u", 3, daemon=True), Handle[bytes])
    assert_type(
        tasks.spawn_threadsafe(fetch, "u", 3, daemon=True),
        concurrent.futures.Future[Handle[bytes]],
    )
    # 0.3: a reader kept until the drain ends; work offered, dropped when closing.
    assert_type(
        tasks.spawn(fetch, "u", 3, daemon=True, stop="after-drain"), Handle[bytes]
    )
    assert_type(tasks.spawn(nothing(), daemon=True, stop="on-close"), Handle[None])
    assert_type(tasks.try_spawn(fetch, "u", 3), Handle[bytes] | None)
    assert_type(tasks.try_spawn(fetch("u", 3)), Handle[bytes] | None)
    assert_type(tasks.try_spawn(one, "u", name="n", timeout=1.0), Handle[bytes] | None)
    assert_type(
        tasks.try_spawn(nothing, daemon=True, stop="after-drain"), Handle[None] | None
    )
    assert_type(tasks.statistics().dropped, int)
    assert_type(tasks.spawn_service(fetch, "u", 3, stop="after-drain"), Handle[bytes])
    assert_type(
        tether.spawn(fetch, "u", 3, daemon=True, stop="after-drain"), Handle[bytes]
    )
    assert_type(
        await tasks.spawn_when_free(fetch, "u", 3, daemon=True, stop="after-drain"),
        Handle[bytes],
    )
    assert_type(
        tasks.spawn_threadsafe(fetch, "u", 3, daemon=True, stop="after-drain"),
        concurrent.futures.Future[Handle[bytes]],
    )


async def pools(tasks: TaskRegistry) -> None:
    pool = tasks.pool("jobs", limit=2, max_pending=10)
    assert_type(pool, tether.Pool)
    assert_type(pool.spawn(fetch, "u", 3), Handle[bytes])
    assert_type(pool.spawn(fetch("u", 3), name="n", daemon=True), Handle[bytes])
    assert_type(await pool.spawn_when_free(fetch, "u", 3), Handle[bytes])
    assert_type(await pool.spawn_when_room(fetch, "u", 3), Handle[bytes])
    assert_type(await pool.spawn_when_room(fetch("u", 3)), Handle[bytes])
    assert_type(await tasks.spawn_when_room(fetch, "u", 3), Handle[bytes])
    assert_type(await tasks.spawn_when_room(nothing, timeout=1.0), Handle[None])
    assert_type(pool.statistics(), RegistryStatistics)
    assert_type(pool.__bool__(), bool)
    assert_type(pool.limit, int)
    assert_type(pool.max_pending, int | None)
    assert_type(pool.registry, TaskRegistry)
    assert_type(list(pool), list[Handle[Any]])
    assert_type(pool.try_spawn(fetch, "u", 3), Handle[bytes] | None)
    assert_type(pool.try_spawn(fetch("u", 3), name="n"), Handle[bytes] | None)
    assert_type(
        pool.try_spawn(nothing, daemon=True, stop="after-drain"), Handle[None] | None
    )
    assert_type(
        pool.spawn_threadsafe(fetch, "u", 3), concurrent.futures.Future[Handle[bytes]]
    )
    assert_type(
        pool.spawn_threadsafe(fetch("u", 3), timeout=1.0),
        concurrent.futures.Future[Handle[bytes]],
    )
    pool.spawn(one, 3)  # type: ignore[arg-type]
    await pool.spawn_when_room(fetch, "u")  # type: ignore[arg-type]
    await tasks.spawn_when_room(blocking, "u")  # type: ignore[arg-type]
    tasks.pool("jobs")  # type: ignore[call-arg]
    pool.try_spawn(one, 3)  # type: ignore[arg-type]
    pool.try_spawn(fetch, "u", retries=3)  # type: ignore[call-overload]
    handle: Handle[bytes] = pool.try_spawn(one, "u")  # type: ignore[assignment]
    pool.spawn_threadsafe(blocking, "u")  # type: ignore[arg-type]
    # spawn_threadsafe takes no context: the task runs in the thread's.
    pool.spawn_threadsafe(nothing, context=None)  # type: ignore[call-overload]


def stops(tasks: TaskRegistry, when: tether.Stop) -> None:
    """``tether.Stop`` annotates a wrapper that passes ``stop=`` on."""
    assert_type(tasks.spawn(nothing, daemon=True, stop=when), Handle[None])
    assert_type(
        tasks.pool("p", limit=1).spawn(nothing, daemon=True, stop=when), Handle[None]
    )
    ok: tether.Stop = "after-drain"
    bad: tether.Stop = "later"  # type: ignore[assignment]
    del ok, bad


async def negatives(tasks: TaskRegistry) -> None:
    # Through the TypeVarTuple: wrong types, wrong order, too few, too many. mypy
    # reports both the count and the callable's type for some of them.
    tasks.spawn(one, 3)  # type: ignore[arg-type]
    tasks.spawn(fetch, "u")  # type: ignore[arg-type]
    tasks.spawn(fetch, 3, "u")  # type: ignore[arg-type, call-arg]
    tasks.spawn(fetch, "u", 3, 4)  # type: ignore[arg-type, call-arg]
    tasks.spawn(fetch("u", 3), 1)  # type: ignore[call-overload]
    tether.spawn(one, 3)  # type: ignore[arg-type]
    tether.spawn(fetch, 3, "u")  # type: ignore[arg-type, call-arg]
    await tasks.spawn_when_free(one, 3)  # type: ignore[arg-type]
    await tasks.spawn_when_free(fetch, "u")  # type: ignore[arg-type]
    # A sync function is not an async function.
    tasks.spawn(blocking, "u")  # type: ignore[arg-type]
    tether.spawn(blocking, "u")  # type: ignore[arg-type]
    await tasks.spawn_when_free(blocking, "u")  # type: ignore[arg-type]
    tasks.spawn_threadsafe(blocking, "u")  # type: ignore[arg-type]
    tasks.spawn_threadsafe(one, 3)  # type: ignore[arg-type]
    # Options.
    tasks.spawn(one, "u", name=1)  # type: ignore[call-overload]
    TaskRegistry(on_error="ignore")  # type: ignore[arg-type]
    TaskRegistry(limit="3")  # type: ignore[arg-type]
    TaskRegistry(ambient="no")  # type: ignore[arg-type]
    tasks.spawn(fetch, "u", 3, daemon="yes")  # type: ignore[call-arg, call-overload]
    tasks.spawn(nothing, daemon=True, stop="later")  # type: ignore[call-arg, call-overload]
    tasks.try_spawn(one, 3)  # type: ignore[arg-type]
    tasks.try_spawn(fetch, "u")  # type: ignore[arg-type]
    tasks.try_spawn(blocking, "u")  # type: ignore[arg-type]
    tasks.try_spawn(fetch("u", 3), 1)  # type: ignore[call-overload]
    tasks.try_spawn(nothing, stop=True)  # type: ignore[call-arg, call-overload]
    handle: Handle[bytes] = tasks.try_spawn(one, "u")  # type: ignore[assignment]
    # Keyword arguments for the function go through functools.partial.
    tasks.spawn(fetch, "u", retries=3)  # type: ignore[call-overload]
    tasks.try_spawn(fetch, "u", retries=3)  # type: ignore[call-overload]
