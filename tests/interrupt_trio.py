"""A trio program whose tether task is busy (never reaches a checkpoint) when it
receives Ctrl+C: run by tests/test_trio.py in a subprocess, which sends SIGINT once
this prints ``busy``.

Usage: ``python tests/interrupt_trio.py CASE``, CASE one of registry, run_all,
as_completed, service, nursery, opened (a registry opened with ``open()``),
default (the default registry). Prints ``interrupted: <type>`` with the exception
that reached ``main`` and exits 0 (the last two cases: ``idle: cancelled`` first,
and ``(alone)`` after the type if no other exception is in its context); a
program that Ctrl+C cannot stop never prints it (the test then kills it).
"""

from __future__ import annotations

import sys

import trio

import tether


def busy() -> None:
    """CPU-bound work with no checkpoint: only a KeyboardInterrupt raised in this
    frame can stop it."""
    print("busy", flush=True)
    while True:
        pass


async def busy_task() -> None:
    await trio.lowlevel.checkpoint()
    busy()


async def idle() -> None:
    await trio.sleep_forever()


async def idle_reporting() -> None:
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        print("idle: cancelled", flush=True)
        raise


async def main(how: str) -> None:
    if how == "registry":
        async with tether.TaskRegistry(name="app") as tasks:
            tasks.spawn(idle)
            tasks.spawn(busy_task)
    elif how == "run_all":
        await tether.run_all(busy_task(), idle())
    elif how == "as_completed":
        async with tether.as_completed(busy_task(), idle()) as done:
            async for _ in done:
                pass
    elif how == "service":
        async with tether.TaskRegistry(name="app") as tasks:
            tasks.spawn_service(busy_task)
            await trio.sleep_forever()  # a service is a daemon: it is not waited for
    elif how == "nursery":
        async with tether.TaskRegistry(name="app") as tasks:
            tether.as_nursery(tasks).start_soon(busy_task)
    elif how == "opened":  # open()/aclose(), no block: the main task sleeps
        tasks = tether.TaskRegistry(name="app")
        await tasks.open()
        try:
            tasks.spawn(idle_reporting)
            tasks.spawn(busy_task)
            await trio.sleep_forever()
        finally:
            await tasks.aclose()
    elif how == "default":  # no registry bound: the default registry's tasks
        tether.spawn(idle_reporting)
        tether.spawn(busy_task)
        await trio.sleep_forever()
    else:
        raise SystemExit(f"unknown case {how!r}")


if __name__ == "__main__":
    try:
        trio.run(main, sys.argv[1])
    except BaseException as exc:  # what reached the caller of trio.run, bare or not
        if sys.argv[1] in ("opened", "default"):
            alone = " (alone)" if exc.__context__ is None else ""
            print(f"interrupted: {type(exc).__name__}{alone}", flush=True)
        else:
            print(f"interrupted: {type(exc).__name__}", flush=True)
