"""The Ctrl+C fan-out CLI of the recipes page (#21), run as a user runs it: a
subprocess checking the sites of a real HTTP server on 127.0.0.1, some slow (they
answer only when the server stops) and some failing, on asyncio, uvloop and trio.

The server runs in the test's own event loop, with aiohttp: these tests run on
asyncio only, and the CLI's backend is the parameter. Determinism comes from what
the CLI prints: SIGINT is sent once the last result that can come has been read
(every slot then waits on a slow site), never after a sleep.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from aiohttp import web
from anyio.streams.buffered import BufferedByteReceiveStream

from servers import BOUND, aiohttp_server

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from anyio.abc import ByteReceiveStream, Process

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True),
    pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT"),
]

TESTS = Path(__file__).resolve().parent
CLI = TESTS / "recipes" / "check_sites.py"

#: Runs the recipe's main() and says, after it, how many tasks outlived it.
PROBE = """
import sys

import anyio
import sniffio

from recipes import check_sites


def living() -> int:
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_statistics().tasks_living
    import asyncio

    return len(asyncio.all_tasks())


async def probed(urls: list[str]) -> int:
    before = living()
    code = await check_sites.main(urls, limit=8, item_timeout=600)
    await anyio.lowlevel.checkpoint()  # a task that just ended is gone after it
    print(f"tasks left: {living() - before}", flush=True)
    return code


backend, urls = sys.argv[1], sys.stdin.read().split()
options = {"use_uvloop": True} if backend == "uvloop" else {}
name = "trio" if backend == "trio" else "asyncio"
sys.exit(anyio.run(probed, urls, backend=name, backend_options=options))
"""


def site_paths(n: int) -> list[str]:
    """Every tenth site hangs (9, 19, ...), every tenth fails (4, 14, ...)."""
    kinds = {9: "slow", 4: "fail"}
    return [f"/{kinds.get(i % 10, 'ok')}/{i}" for i in range(n)]


@asynccontextmanager
async def sites() -> AsyncGenerator[str, None]:
    """A server whose /ok/N answer 200, /fail/N 500, and /slow/N only when the
    server stops: its block ends with them released, pass or fail."""
    stopping = anyio.Event()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, text="down")

    async def slow(request: web.Request) -> web.Response:
        await stopping.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/ok/{n}", ok)
    app.router.add_get("/fail/{n}", fail)
    app.router.add_get("/slow/{n}", slow)
    async with aiohttp_server(app) as url:
        try:
            yield url
        finally:
            stopping.set()


async def start(argv: list[str], urls: list[str]) -> Process:
    process = await anyio.open_process(
        # An unclosed socket or transport would print to stderr, which the tests
        # assert empty.
        [sys.executable, "-W", "error::ResourceWarning", *argv],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert process.stdin is not None
    await process.stdin.send("\n".join(urls).encode())
    await process.stdin.aclose()
    return process


async def read_all(stream: ByteReceiveStream | None) -> str:
    """Everything ``stream`` gives until it ends, as text."""
    assert stream is not None
    chunks = [chunk async for chunk in stream]
    return b"".join(chunks).decode()


@pytest.mark.parametrize("cli_backend", ["asyncio", "uvloop", "trio"])
async def test_ctrl_c_stops_the_fan_out_at_once_and_prints_what_was_checked(
    cli_backend: str,
) -> None:
    # 100 sites, 8 at a time, no timeout to speak of (600 s): sites 0 to 79 start,
    # 72 answer, and the 8 slow ones among them hold every slot. Only Ctrl+C ends
    # the run now.
    async with sites() as url:
        urls = [url + path for path in site_paths(100)]
        process = await start(["-c", PROBE, cli_backend], urls)
        async with process:
            try:
                with anyio.fail_after(BOUND):  # a hang guard, not a timing
                    assert process.stdout is not None
                    lines = BufferedByteReceiveStream(process.stdout)
                    header = await lines.receive_until(b"\n", 65536)
                    assert header == b"checking 100 sites, 8 at a time"
                    results = [
                        (await lines.receive_until(b"\n", 65536)).decode()
                        for _ in range(72)
                    ]
                    process.send_signal(signal.SIGINT)
                    rest = (await read_all(lines)).splitlines()
                    err = await read_all(process.stderr)
                    code = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
    assert err == ""  # no traceback, no warning, nothing pending at the loop's end
    assert code == 130
    assert rest == [
        "interrupted: 72 of 100 checked: 64 ok, 8 failed, 0 timed out",
        "tasks left: 0",
    ]
    assert sum(line.startswith("ok ") for line in results) == 64
    assert sum(line.startswith("failed  ") for line in results) == 8
    assert all("/slow/" not in line for line in results)


@pytest.mark.parametrize("cli_backend", ["asyncio", "uvloop", "trio"])
async def test_a_run_to_completion_shows_slow_sites_as_timeout_errors_in_place(
    cli_backend: str,
) -> None:
    # A short item timeout on the real clock: the slow sites never answer, so
    # they time out whatever the machine's speed; the others answer at once.
    async with sites() as url:
        urls = [url + path for path in site_paths(30)]
        argv = [str(CLI), "--backend", cli_backend, "--item-timeout", "0.5"]
        process = await start(argv, urls)
        async with process:
            try:
                with anyio.fail_after(BOUND):
                    out = await read_all(process.stdout)
                    err = await read_all(process.stderr)
                    code = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
    assert err == ""
    assert code == 1  # not every site is up
    lines = out.splitlines()
    assert lines[0] == "checking 30 sites, 8 at a time"
    assert lines[-1] == "30 of 30 checked: 24 ok, 3 failed, 3 timed out"
    timeouts = sorted(line for line in lines if line.startswith("timeout "))
    assert timeouts == [
        f"timeout {url}/slow/{n}: TimeoutError('amap() {url}/slow/{n} did not "
        "finish within item_timeout=0.5 s and was cancelled')"
        for n in (19, 29, 9)
    ]
    failed = sorted(line for line in lines if line.startswith("failed "))
    assert failed == [f"failed  {url}/fail/{n}: HTTPStatusError" for n in (14, 24, 4)]
