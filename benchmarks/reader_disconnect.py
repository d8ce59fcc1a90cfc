"""A websocket client's disconnect: how long it takes and how many handlers in
flight complete, before and after ``stop="after-drain"`` and ``try_spawn``.

A real websocket server on 127.0.0.1 streams an event every ``--interval``
seconds and answers each request ``--reply-delay`` seconds after it comes. The
client runs one handler task per event; each handler sends a request and waits
for its reply, which only the client's reader delivers. After ``--run`` seconds
the client disconnects (``shutdown_timeout=5``, websockets' ``close_timeout``
of 10 s), while the server goes on streaming. Three clients:

* ``daemon``: the reader is a plain ``daemon=True`` task (tether 0.2): it is
  cancelled as soon as closing begins, so the handlers wait for replies that no
  one reads until the deadline cancels them;
* ``two registries``: the workaround of issue 21, a registry for the reader and
  one for the handlers, closed in that order, with ``RegistryClosed`` caught in
  the reader for events that arrive during the drain;
* ``after-drain``: the recipe of docs/recipes.md (tests/recipes/websocket_client.py):
  ``spawn(reader, daemon=True, stop="after-drain")`` and ``try_spawn``.

    python benchmarks/reader_disconnect.py [--repeat 3] [--uvloop]

asyncio only (the websockets package does not run on trio). Prints, per client,
the median disconnect time and the handlers completed out of those started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

import tether

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from recipes.websocket_client import Client, Connection

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class Counts:
    def __init__(self) -> None:
        self.started = 0
        self.completed = 0


class Streamer:
    """The server: an event every ``interval`` s; a reply ``delay`` s after each
    request."""

    def __init__(self, interval: float, delay: float) -> None:
        self.interval = interval
        self.delay = delay
        self.sent = 0

    async def serve(self, websocket: ServerConnection) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._stream, websocket)
            async for message in websocket:
                tg.start_soon(self._answer, websocket, json.loads(message))
            tg.cancel_scope.cancel()

    async def _stream(self, websocket: ServerConnection) -> None:
        while True:
            self.sent += 1
            await websocket.send(json.dumps({"event": f"e{self.sent}"}))
            await anyio.sleep(self.interval)

    async def _answer(self, websocket: ServerConnection, request: Any) -> None:
        await anyio.sleep(self.delay)
        reply = {"reply_to": request["id"], "body": request["body"].upper()}
        await websocket.send(json.dumps(reply))


class DaemonClient:
    """tether 0.2's shape: the reader a plain daemon in the handlers' registry."""

    def __init__(self, url: str, counts: Counts, two_registries: bool) -> None:
        self.url = url
        self.counts = counts
        self.two = two_registries
        self.replies: dict[int, asyncio.Future[str]] = {}
        self.ids = itertools.count()
        self.handlers = tether.TaskRegistry(ambient=False, shutdown_timeout=5)
        self.readers = (
            tether.TaskRegistry(ambient=False, shutdown_timeout=5)
            if two_registries
            else self.handlers
        )
        self.websocket: ClientConnection | None = None

    async def connect(self) -> None:
        self.websocket = await connect(self.url)
        await self.handlers.open()
        if self.two:
            await self.readers.open()
        self.readers.spawn(self.read, daemon=True)

    async def read(self) -> None:
        assert self.websocket is not None
        async for message in self.websocket:
            frame = json.loads(message)
            if "reply_to" in frame:
                reply = self.replies.get(frame["reply_to"])
                if reply is not None and not reply.done():
                    reply.set_result(frame["body"])
            else:
                # The workaround: an event during the drain raises.
                with contextlib.suppress(tether.RegistryClosed):
                    self.handlers.spawn(self.handle, frame["event"])

    async def handle(self, event: str) -> None:
        assert self.websocket is not None
        self.counts.started += 1
        n = next(self.ids)
        reply = self.replies[n] = asyncio.get_running_loop().create_future()
        await self.websocket.send(json.dumps({"id": n, "body": event}))
        await reply
        self.counts.completed += 1

    async def disconnect(self) -> None:
        assert self.websocket is not None
        await self.handlers.aclose()
        if self.two:
            await self.readers.aclose()
        await self.websocket.close()


class RecipeClient:
    """The recipe, with a handler that counts."""

    def __init__(self, url: str, counts: Counts) -> None:
        self.counts = counts
        self.client = Client(url, self.handle, shutdown_timeout=5)
        self.connect = self.client.connect
        self.disconnect = self.client.disconnect

    async def handle(self, connection: Connection, event: str) -> None:
        self.counts.started += 1
        await connection.request(event)
        self.counts.completed += 1


async def one_run(
    kind: str, run: float, interval: float, delay: float
) -> tuple[float, Counts]:
    streamer = Streamer(interval, delay)
    counts = Counts()
    async with serve(streamer.serve, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        client: DaemonClient | RecipeClient
        if kind == "after-drain":
            client = RecipeClient(url, counts)
        else:
            client = DaemonClient(url, counts, two_registries=kind == "two registries")
        await client.connect()
        await anyio.sleep(run)
        start = time.perf_counter()
        await client.disconnect()
        took = time.perf_counter() - start
    return took, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run", type=float, default=0.5)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--reply-delay", type=float, default=0.2)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    backend_options = {"use_uvloop": args.uvloop}
    kinds = ["daemon", "two registries", "after-drain"]
    results: dict[str, list[tuple[float, Counts]]] = {kind: [] for kind in kinds}
    for _ in range(args.repeat):
        for kind in kinds:  # interleaved: the machine's load falls on each alike

            def bound(
                kind: str = kind,
            ) -> Callable[[], Awaitable[tuple[float, Counts]]]:
                return lambda: one_run(kind, args.run, args.interval, args.reply_delay)

            results[kind].append(
                anyio.run(bound(), backend="asyncio", backend_options=backend_options)
            )
    loop = "uvloop" if args.uvloop else "asyncio"
    print(
        f"disconnect of a websocket client on {loop}: an event every "
        f"{args.interval:g} s, replies after {args.reply_delay:g} s, disconnect after "
        f"{args.run:g} s; medians of {args.repeat}"
    )
    print(f"{'client':<16} {'disconnect':>11} {'handlers completed':>20}")
    for kind in kinds:
        took = statistics.median(t for t, _ in results[kind])
        done = sum(c.completed for _, c in results[kind])
        started = sum(c.started for _, c in results[kind])
        print(f"{kind:<16} {took:>9.3f} s {done:>9} of {started:<9}")


if __name__ == "__main__":
    main()
