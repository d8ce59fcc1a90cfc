"""What tether.dump() draws under a task that awaits a gather: the gather, and each
of its running children with its own await chain."""

import re

import anyio

import tether


async def fetch(url: str, release: anyio.Event) -> str:
    await release.wait()
    return url


async def crawl(release: anyio.Event) -> tuple[str, ...]:
    pages = (fetch(f"https://example.test/{n}", release) for n in range(3))
    return await tether.run_all(*pages, limit=2)


async def main() -> None:
    release = anyio.Event()
    async with tether.TaskRegistry(name="app", shutdown_timeout=5) as tasks:
        tasks.spawn(crawl, release, name="crawler")
        await anyio.wait_all_tasks_blocked()
        print(steady(tether.dump()))
        release.set()


def steady(tree: str) -> str:
    """Durations, paths, and the frames inside anyio and asyncio change from run to
    run and version to version: keep the frames of this file."""
    lines: list[str] = []
    for line in re.sub(r"for \d+\.\d s", "for ... s", tree).splitlines():
        head, found, chain = line.partition(": suspended at ")
        if found:
            ours = [f for f in chain.split(" > ") if "dump_gather.py:" in f]
            chain = " > ".join(
                re.sub(r"\(\S*dump_gather\.py", "(dump_gather.py", f) for f in ours
            )
            line = f"{head}{found}{chain} > ..."
        lines.append(line)
    return "\n".join(lines)


anyio.run(main)
