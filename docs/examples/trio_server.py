"""A trio server whose server task and connection handlers are registry tasks.

The server runs as a registry task started with ``tasks.start`` (its
``task_status`` is trio's own, and the listeners come back typed); each connection's
handler is spawned into the same registry through ``tether.as_nursery``. A handler
that fails is reported by the registry and the server keeps serving.
"""

from functools import partial

import trio

import tether


async def shout(stream: trio.SocketStream) -> None:
    data = await stream.receive_some()
    if data == b"boom":
        raise ValueError("this handler fails on purpose")
    await stream.send_all(data.upper())


async def ask(port: int, message: bytes) -> bytes:
    async with await trio.open_tcp_stream("127.0.0.1", port) as client:
        await client.send_all(message)
        return await client.receive_some()


async def main() -> None:
    failures: list[str] = []

    def report(handle: tether.Handle[object], exc: Exception) -> None:
        failures.append(f"{handle.name} failed: {exc}")

    async with tether.TaskRegistry(name="server", on_error=report) as tasks:
        serve = partial(
            trio.serve_tcp,
            shout,
            0,
            host="127.0.0.1",
            handler_nursery=tether.as_nursery(tasks),  # type: ignore[arg-type]
        )
        listeners: list[trio.SocketListener] = await tasks.start(serve, daemon=True)
        port = listeners[0].socket.getsockname()[1]
        print("1. the server is ready")
        for message in (b"hello", b"boom", b"still there?"):
            answer = await ask(port, message)
            print(f"2. sent {message!r}, got {answer!r}")
        print("3. leaving the block cancels the server (a daemon) and drains handlers")
    print(f"4. reported by the registry: {failures}")
    print(f"5. {tasks.statistics()}")


trio.run(main)
