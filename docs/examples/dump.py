"""What tasks.dump() draws: a consumer, a task with a registry of its own, and a
task queued behind the limit."""

import re

import anyio

import tether


async def fetch_next(queue: anyio.Event) -> None:
    await queue.wait()


async def consume(queue: anyio.Event) -> None:
    await fetch_next(queue)


async def crawl(done: anyio.Event) -> None:
    async with tether.TaskRegistry(name="crawler", shutdown_timeout=5) as pages:
        pages.spawn(consume, done, name="page 1")
        await done.wait()


async def main() -> None:
    done = anyio.Event()
    async with tether.TaskRegistry(name="app", limit=2, shutdown_timeout=5) as tasks:
        tasks.spawn(consume, done, name="consumer", daemon=True)
        tasks.spawn(crawl, done, name="crawl")
        tasks.spawn(consume, done, name="report")
        await anyio.wait_all_tasks_blocked()
        print(steady(tasks.dump()))
        done.set()


def steady(tree: str) -> str:
    """Durations, paths, and the frames inside anyio and asyncio change from run to
    run and version to version: keep the frames of this file."""
    lines: list[str] = []
    for line in re.sub(r"for \d+\.\d s", "for ... s", tree).splitlines():
        head, found, chain = line.partition(": suspended at ")
        if found:
            ours = [f for f in chain.split(" > ") if "dump.py:" in f]
            chain = " > ".join(re.sub(r"\(\S*dump\.py", "(dump.py", f) for f in ours)
            line = f"{head}{found}{chain} > ..."
        lines.append(line)
    return "\n".join(lines)


anyio.run(main)
