"""tether.asgi under uvicorn on 127.0.0.1, driven by httpx: FastAPI and Starlette.

uvicorn serves on asyncio only, so these run on asyncio and asyncio with uvloop
(the event loop the test runs on is the server's). The signal tests, with uvicorn
as a program, are in test_asgi_signals.py.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import Request  # noqa: TC002 - FastAPI reads the annotation
from fastapi.responses import StreamingResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tether
from recipes import fastapi_app, starlette_app
from servers import BOUND, Mailer, failure_log, uvicorn_server, uvicorn_serving
from tether.asgi import TaskRegistryMiddleware

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable

    import uvicorn
    from starlette.requests import Request as StarletteRequest

    from tether.asgi import ASGIApp

pytestmark = pytest.mark.anyio

RECIPES: dict[str, Callable[[Mailer], ASGIApp]] = {
    "fastapi": fastapi_app.create_app,
    "starlette": starlette_app.create_app,
}


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """uvicorn runs on asyncio, with or without uvloop."""
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


@pytest.fixture(params=list(RECIPES))
def recipe(request: pytest.FixtureRequest) -> Callable[[Mailer], ASGIApp]:
    return RECIPES[request.param]


async def test_the_response_returns_before_the_work_ends_and_the_work_completes(
    recipe: Callable[[Mailer], ASGIApp],
) -> None:
    mailer = Mailer()
    async with (
        uvicorn_server(recipe(mailer)) as url,
        httpx.AsyncClient(base_url=url, timeout=BOUND) as client,
    ):
        response = await client.post("/signup", params={"address": "ada@example.com"})
        assert response.status_code == 202
        await mailer.started.wait()
        assert not mailer.finished.is_set()  # still running after its response
        mailer.release.set()
        await mailer.finished.wait()
    assert mailer.sent == ["ada@example.com"]


async def test_the_registry_is_a_fastapi_dependency() -> None:
    mailer = Mailer()
    async with (
        uvicorn_server(fastapi_app.create_app(mailer)) as url,
        httpx.AsyncClient(base_url=url, timeout=BOUND) as client,
    ):
        await client.post("/signup", params={"address": "ada@example.com"})
        await mailer.started.wait()
        assert (await client.get("/tasks")).json() == {"running": 1}
        mailer.release.set()
        await mailer.finished.wait()


async def test_spawned_work_survives_the_client_disconnecting() -> None:
    mailer = Mailer()
    stream_cancelled = anyio.Event()
    app = fastapi_app.create_app(mailer)

    @app.get("/stream")
    async def stream(address: str, request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            tether.spawn(request.app.state.mailer.send, address)
            try:
                yield b"queued\n"
                await anyio.sleep_forever()
            finally:
                stream_cancelled.set()  # Starlette saw the disconnect

        return StreamingResponse(body())

    async with uvicorn_server(app) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=BOUND) as client,
            client.stream("GET", "/stream", params={"address": "ada@x.org"}) as r,
        ):
            async for chunk in r.aiter_bytes():
                assert chunk == b"queued\n"
                break
        # The client has hung up and the request's own work was cancelled.
        await stream_cancelled.wait()
        await mailer.started.wait()
        mailer.release.set()
        await mailer.finished.wait()
    assert mailer.sent == ["ada@x.org"]


async def test_a_failing_job_is_logged_by_name_and_later_requests_are_unaffected(
    recipe: Callable[[Mailer], ASGIApp],
) -> None:
    mailer = Mailer()
    async with (
        failure_log() as log,
        uvicorn_server(recipe(mailer)) as url,
        httpx.AsyncClient(base_url=url, timeout=BOUND) as client,
    ):
        response = await client.post("/signup", params={"address": "bounce@x.org"})
        assert response.status_code == 202
        await log.logged.wait()
        [record] = log.records
        assert record.getMessage() == (
            "Task 'welcome bounce@x.org' of TaskRegistry 'app' failed"
        )
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ConnectionRefusedError)
        assert getattr(record, "tether_task", None) == "welcome bounce@x.org"

        mailer.started = anyio.Event()
        response = await client.post("/signup", params={"address": "ada@x.org"})
        assert response.status_code == 202
        await mailer.started.wait()
        mailer.release.set()
        await mailer.finished.wait()
    assert mailer.sent == ["ada@x.org"]
    assert len(log.records) == 1


async def test_stop_server_may_be_a_callable_that_stops_an_embedded_server() -> None:
    """Regression (issue 27): a SystemExit in a task left the server serving. A
    program that runs uvicorn.Server itself stops it through should_exit."""
    causes: list[BaseException] = []
    called = anyio.Event()
    servers: list[uvicorn.Server] = []

    def stop(cause: BaseException) -> None:
        causes.append(cause)
        servers[0].should_exit = True
        called.set()

    async def watchdog() -> None:
        await anyio.lowlevel.checkpoint()
        raise SystemExit(3)

    async def spawn(request: StarletteRequest) -> PlainTextResponse:
        tether.spawn(watchdog)
        return PlainTextResponse("spawned")

    app = Starlette(routes=[Route("/exit", spawn, methods=["POST"])])
    middleware = TaskRegistryMiddleware(app, stop_server=stop)
    async with uvicorn_serving(middleware) as (url, server):
        servers.append(server)
        async with httpx.AsyncClient(base_url=url, timeout=BOUND) as client:
            assert (await client.post("/exit")).status_code == 200
        await called.wait()
    [cause] = causes
    assert isinstance(cause, SystemExit)
    assert cause.code == 3


class Said(logging.Handler):
    """Sets ``event`` when a record's message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text = text
        self.event = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_uvicorn_drains_the_registry_once_it_has_waited_for_open_requests() -> (
    None
):
    """Issue 27: the order, and so the worst case: uvicorn waits for the open
    requests (up to timeout_graceful_shutdown, no limit by default), then sends
    the lifespan shutdown, where the registry drains for its shutdown_timeout."""
    events: list[str] = []
    in_flight, release, job_release = anyio.Event(), anyio.Event(), anyio.Event()
    waiting = Said("Waiting for connections to close")
    draining = Said("is draining")

    async def job() -> None:
        await job_release.wait()
        events.append("job finished")

    async def slow(request: StarletteRequest) -> PlainTextResponse:
        in_flight.set()
        await release.wait()
        registry = tether.current_registry()
        events.append(f"request still open, registry {registry.state.name}")
        tether.spawn(job)  # an open request may still spawn
        return PlainTextResponse("done")

    async def get(client: httpx.AsyncClient) -> None:
        assert (await client.get("/slow")).text == "done"

    app = Starlette(routes=[Route("/slow", slow)])
    middleware = TaskRegistryMiddleware(app, shutdown_timeout=BOUND)
    logging.getLogger("uvicorn.error").addHandler(waiting)
    logging.getLogger("tether").addHandler(draining)
    try:
        async with (
            uvicorn_serving(middleware, log_level="info") as (url, server),
            httpx.AsyncClient(base_url=url, timeout=BOUND) as client,
            anyio.create_task_group() as group,
        ):
            group.start_soon(get, client)
            await in_flight.wait()
            server.should_exit = True
            await waiting.event.wait()  # uvicorn waits for the open request
            release.set()
            await draining.event.wait()
            events.append("registry drains")
            job_release.set()
    finally:
        logging.getLogger("uvicorn.error").removeHandler(waiting)
        logging.getLogger("tether").removeHandler(draining)
    assert events == [
        "request still open, registry OPEN",
        "registry drains",
        "job finished",
    ]


async def test_a_pool_made_in_the_lifespan_lets_the_follow_ups_through() -> None:
    """Issue 27, item 3, under uvicorn: the app's lifespan makes a pool of two for
    its jobs from the middleware's registry (bound there); the jobs' own
    ``tether.spawn`` goes to the registry, so the follow-ups of jobs 0 and 1 run
    while 2 and 3 wait in the pool's queue."""
    release = anyio.Event()
    followed: list[str] = []
    both = anyio.Event()

    async def follow_up(folder: str) -> None:
        followed.append(folder)
        if len(followed) == 2:
            both.set()

    async def job(folder: str) -> None:
        tether.spawn(follow_up, folder, name="notify")
        await release.wait()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        app.state.jobs = tether.current_registry().pool("jobs", limit=2)
        yield

    async def scan(request: StarletteRequest) -> PlainTextResponse:
        jobs: tether.Pool = request.app.state.jobs
        jobs.spawn(job, request.query_params["folder"], name="scan")
        return PlainTextResponse("accepted", status_code=202)

    async def stats(request: StarletteRequest) -> PlainTextResponse:
        s = request.app.state.jobs.statistics()
        return PlainTextResponse(f"{s.running} running, {s.queued} queued")

    app = TaskRegistryMiddleware(
        Starlette(
            routes=[
                Route("/scan", scan, methods=["POST"]),
                Route("/stats", stats),
            ],
            lifespan=lifespan,
        ),
        shutdown_timeout=BOUND,
    )
    async with (
        uvicorn_server(app) as url,
        httpx.AsyncClient(base_url=url, timeout=BOUND) as client,
    ):
        for i in range(4):
            response = await client.post("/scan", params={"folder": str(i)})
            assert response.status_code == 202
        await both.wait()  # never, were the follow-ups queued behind the jobs
        assert sorted(followed) == ["0", "1"]
        assert (await client.get("/stats")).text == "2 running, 2 queued"
        release.set()
    assert sorted(followed) == ["0", "1", "2", "3"]
