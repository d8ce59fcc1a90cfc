"""The aiohttp recipe served by ``web.run_app`` as a program, for the signal tests.

    python serve_aiohttp.py LOOP SHUTDOWN_TIMEOUT

It prints what the test waits for on stdout, as ``serve_uvicorn.py`` does.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from recipes import aiohttp_app
from serve_uvicorn import PrintingMailer
from servers import listening_socket, url_of


def main() -> None:
    loop, shutdown_timeout = sys.argv[1], float(sys.argv[2])
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(message)s"
    )
    app = aiohttp_app.create_app(PrintingMailer(), shutdown_timeout=shutdown_timeout)
    sock = listening_socket()
    print(f"listening {url_of(sock)}", flush=True)
    if loop == "uvloop":
        import uvloop

        event_loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        event_loop = asyncio.new_event_loop()
    # run_app stops on SIGINT and SIGTERM alike and runs the cleanup contexts,
    # where the registry drains.
    web.run_app(app, sock=sock, print=None, loop=event_loop)
    print("run_app returned", flush=True)


if __name__ == "__main__":
    main()
