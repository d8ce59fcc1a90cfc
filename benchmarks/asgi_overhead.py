"""The per-request cost of tether.asgi.TaskRegistryMiddleware, through uvicorn.

    python benchmarks/asgi_overhead.py [--requests N] [--connections C] [--rounds R]

Serves the same Starlette app with and without the middleware, one after the
other in each round, in one run, on 127.0.0.1, and drives each with the same
small load generator: C httpx clients on keep-alive connections, each sending
GET / and reading the response N/C times. Prints requests per second for both
and their ratio, best of R rounds. Measures; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tether.asgi import TaskRegistryMiddleware


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


def make_app(middleware: bool) -> Starlette:
    app = Starlette(routes=[Route("/", hello)])
    if middleware:
        app.add_middleware(TaskRegistryMiddleware, shutdown_timeout=5)
    return app


async def client(port: int, count: int) -> None:
    """One keep-alive connection sending ``count`` requests, one after another."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(count):
            response = await http.get("/")
            response.raise_for_status()


async def measure(middleware: bool, requests: int, connections: int) -> float:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(connections)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(middleware), log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve([sock]))
    try:
        await client(port, 10)  # warm up
        started = time.perf_counter()
        per_client = requests // connections
        await asyncio.gather(*(client(port, per_client) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    finally:
        server.should_exit = True
        await serving
        sock.close()
    return per_client * connections / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best = {False: 0.0, True: 0.0}
    for _ in range(args.rounds):
        for middleware in (False, True):
            rate = await measure(middleware, args.requests, args.connections)
            best[middleware] = max(best[middleware], rate)
    bare, wrapped = best[False], best[True]
    print(f"without middleware: {bare:8.0f} requests/s")
    print(f"with middleware:    {wrapped:8.0f} requests/s")
    print(
        f"ratio: {wrapped / bare:.3f}; per-request cost: "
        f"{(1 / wrapped - 1 / bare) * 1e6:.1f} us"
    )


if __name__ == "__main__":
    asyncio.run(main())
