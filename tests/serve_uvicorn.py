"""The FastAPI recipe served by uvicorn as a program, for the signal tests.

    python serve_uvicorn.py LOOP SHUTDOWN_TIMEOUT

It prints what the test waits for on stdout, one line each: ``listening URL``
once its socket listens, the log records of tether and uvicorn, and what each
send does. A send to an address starting with ``stdin`` finishes when a line
arrives on stdin; any other send runs until it is cancelled.
"""

from __future__ import annotations

import logging
import sys

import anyio
import anyio.to_thread
import uvicorn

from recipes import fastapi_app
from servers import listening_socket, url_of


class PrintingMailer:
    async def send(self, address: str) -> None:
        print(f"send started {address}", flush=True)
        try:
            if address.startswith("stdin"):
                await anyio.to_thread.run_sync(sys.stdin.readline)
            else:
                await anyio.sleep_forever()
        except BaseException:
            print(f"send cancelled {address}", flush=True)
            raise
        print(f"send finished {address}", flush=True)


def main() -> None:
    loop, shutdown_timeout = sys.argv[1], float(sys.argv[2])
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(message)s"
    )
    app = fastapi_app.create_app(PrintingMailer(), shutdown_timeout=shutdown_timeout)
    sock = listening_socket()
    print(f"listening {url_of(sock)}", flush=True)
    config = uvicorn.Config(app, loop=loop, log_config=None, ws="none")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the SIGINT it stopped on again
        print("exited on SIGINT", flush=True)


if __name__ == "__main__":
    main()
