"""A CLI that fans out hundreds of HTTP checks with per-item timeouts and stops on
Ctrl+C: ``amap`` keeps going past failures, a site that hangs is a TimeoutError in
place, and Ctrl+C cancels the run, prints what was checked and exits 130.

    python check_sites.py [--limit 8] [--item-timeout 3.5] [--backend trio] < urls
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from dataclasses import dataclass

import anyio
import httpx

import tether


async def check(client: httpx.AsyncClient, url: str) -> int:
    response = await client.get(url)
    response.raise_for_status()  # a 5xx is a failure of this site
    return response.status_code


@dataclass
class Tally:
    total: int
    ok: int = 0
    failed: int = 0
    timed_out: int = 0

    def add(self, url: str, outcome: int | Exception) -> None:
        if isinstance(outcome, TimeoutError):
            self.timed_out += 1
            print(f"timeout {url}: {outcome!r}", flush=True)
        elif isinstance(outcome, Exception):
            self.failed += 1
            print(f"failed  {url}: {type(outcome).__name__}", flush=True)
        else:
            self.ok += 1
            print(f"ok      {url}: {outcome}", flush=True)

    def summary(self) -> str:
        checked = self.ok + self.failed + self.timed_out
        return (
            f"{checked} of {self.total} checked: {self.ok} ok, {self.failed} failed, "
            f"{self.timed_out} timed out"
        )


async def check_all(
    urls: list[str], tally: Tally, *, limit: int, item_timeout: float
) -> None:
    async with (
        httpx.AsyncClient(timeout=None) as client,  # item_timeout bounds each check
        tether.amap(
            functools.partial(check, client),
            urls,
            limit=limit,
            item_timeout=item_timeout,
            return_exceptions=True,  # (url, result or exception), as they finish
        ) as results,
    ):
        async for url, outcome in results:
            tally.add(url, outcome)


async def main(urls: list[str], *, limit: int = 8, item_timeout: float = 3.5) -> int:
    tally = Tally(len(urls))
    print(f"checking {len(urls)} sites, {limit} at a time", flush=True)
    async with tether.TaskRegistry(name="check-sites", shutdown_timeout=5) as tasks:
        checks = functools.partial(check_all, limit=limit, item_timeout=item_timeout)
        run = tasks.spawn(checks, urls, tally)
        # Ctrl+C cancels the run at once; a second Ctrl+C quits as it did before.
        with tether.cancel_on_signal(run, signal.SIGINT):
            try:
                await run
            except tether.TaskCancelled:
                print(f"interrupted: {tally.summary()}", flush=True)
                return 130  # 128 + SIGINT, as a shell reports it
    print(tally.summary(), flush=True)
    return 0 if tally.ok == tally.total else 1


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the URLs read from stdin.")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--item-timeout", type=float, default=3.5)
    parser.add_argument("--backend", choices=["asyncio", "uvloop", "trio"])
    args = parser.parse_args(argv)
    urls = [line.strip() for line in sys.stdin if line.strip()]
    run = functools.partial(
        main, urls, limit=args.limit, item_timeout=args.item_timeout
    )
    if args.backend == "trio":
        return anyio.run(run, backend="trio")
    uvloop = args.backend == "uvloop"
    return anyio.run(run, backend="asyncio", backend_options={"use_uvloop": uvloop})


if __name__ == "__main__":
    sys.exit(cli())
