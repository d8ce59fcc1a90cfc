"""tether.asgi in process: the lifespan protocol with every kind of app, and what
a request gets when no lifespan ran.

Starlette's TestClient runs the app in a thread of its own, on the backend it is
given: those tests run on asyncio and trio. httpx.ASGITransport runs the app in
the test's task, so those tests run on every backend of the suite.
"""

# Starlette's TestClient subclasses httpx2's client, whose types pyright cannot see.
# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false

from __future__ import annotations

import signal
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import tether
from helpers import tether_records
from recipes import fastapi_app, starlette_app
from servers import Mailer
from tether.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    TaskRegistryMiddleware,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.requests import Request

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup


class Recorder:
    """A mailer that finishes at once, recording what it sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, address: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent.append(address)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_test_client_with_a_lifespan_drains_the_work_when_it_ends(
    backend: Literal["asyncio", "trio"],
) -> None:
    mailer = Recorder()
    app = starlette_app.create_app(mailer)
    with TestClient(app, backend=backend) as client:
        assert client.post("/signup", params={"address": "a@x.org"}).status_code == 202
        with client.websocket_connect("/invitations") as websocket:
            websocket.send_text("b@x.org")
            assert websocket.receive_text() == "queued b@x.org"
    assert sorted(mailer.sent) == ["a@x.org", "b@x.org"]


def test_each_lifespan_gets_a_new_registry() -> None:
    mailer = Recorder()
    app = fastapi_app.create_app(mailer)
    for address in ("a@x.org", "b@x.org"):
        with TestClient(app) as client:
            client.post("/signup", params={"address": address})
    assert mailer.sent == ["a@x.org", "b@x.org"]


def test_a_test_client_without_with_gets_an_error_naming_the_fix() -> None:
    client = TestClient(fastapi_app.create_app(Recorder()))
    with pytest.raises(tether.NoRegistry) as raised:
        client.post("/signup", params={"address": "a@x.org"})
    message = str(raised.value)
    assert "no open registry for this http request" in message
    assert "`with TestClient(app) as client:`" in message


@pytest.mark.anyio
async def test_asgi_transport_without_a_registry_gets_an_error_naming_the_fix() -> None:
    transport = httpx.ASGITransport(app=fastapi_app.create_app(Recorder()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(tether.NoRegistry, match=r"httpx\.ASGITransport"):
            await client.post("/signup", params={"address": "a@x.org"})


@pytest.mark.anyio
async def test_asgi_transport_spawns_into_the_registry_around_the_requests(
    tether_registry: tether.TaskRegistry,
) -> None:
    mailer = Mailer()
    transport = httpx.ASGITransport(app=fastapi_app.create_app(mailer))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/signup", params={"address": "a@x.org"})
        assert response.status_code == 202
        await mailer.started.wait()
        assert (await client.get("/tasks")).json() == {"running": 1}
    [handle] = tether_registry
    assert handle.name == "welcome a@x.org"
    mailer.release.set()
    await handle
    assert mailer.sent == ["a@x.org"]


def test_the_registry_opens_before_the_app_starts_and_drains_before_it_stops() -> None:
    events: list[str] = []

    async def job() -> None:
        await anyio.lowlevel.checkpoint()
        events.append("job done")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        tether.spawn(job)  # the app's own startup may spawn
        events.append("app started")
        yield
        events.append("app shut down")

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(TaskRegistryMiddleware, shutdown_timeout=10)
    with TestClient(app):
        pass
    assert events == ["app started", "job done", "app shut down"]


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that refuses every scope but http, as many small apps do."""
    assert scope["type"] == "http", "this app does not support the lifespan"
    tether.spawn(bare_job)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def returning_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app whose lifespan returns after its startup."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        return
    await bare_app(scope, receive, send)


BARE_JOBS: list[str] = []


async def bare_job() -> None:
    await anyio.lowlevel.checkpoint()
    BARE_JOBS.append("done")


@pytest.mark.parametrize("app", [bare_app, returning_app])
def test_an_app_that_does_not_handle_the_lifespan_gets_one(
    app: ASGIApp,
) -> None:
    BARE_JOBS.clear()
    with TestClient(TaskRegistryMiddleware(app, shutdown_timeout=10)) as client:
        assert client.get("/").status_code == 204
    assert BARE_JOBS == ["done"]


def test_a_failed_startup_closes_the_registry() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        tether.spawn(anyio.sleep_forever, name="opened too early")
        if app.title:  # always: the startup fails
            raise RuntimeError("no database")
        yield  # pragma: no cover

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(TaskRegistryMiddleware)
    with pytest.raises(RuntimeError, match="no database"), TestClient(app):
        pass  # pragma: no cover


def test_bad_options_fail_at_once_with_the_registrys_own_error() -> None:
    with pytest.raises(ValueError, match=r"TaskRegistry\(limit=0\)"):
        TaskRegistryMiddleware(bare_app, limit=0)
    with pytest.raises(ValueError, match="needs a limit"):
        TaskRegistryMiddleware(bare_app, max_pending=3)
    # Starlette makes its middleware at the app's first event: the startup.
    app = starlette_app.create_app(Recorder())
    app.add_middleware(TaskRegistryMiddleware, shutdown_timeout=-1)
    with pytest.raises(ValueError, match="shutdown_timeout"), TestClient(app):
        pass  # pragma: no cover


def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        raise AssertionError("not called")  # pragma: no cover

    async def send(message: Message) -> None:
        raise AssertionError("not called")  # pragma: no cover

    anyio.run(TaskRegistryMiddleware(app), {"type": "custom"}, receive, send)
    assert seen == ["custom"]


def fatal_app(
    events: list[str], *, shutdown_fails: bool = False, **options: Any
) -> TaskRegistryMiddleware:
    """A Starlette app with a lifespan of its own whose ``POST /spawn?kind=`` spawns
    a task that fails (``fail``) or exits (``exit``); with ``shutdown_fails``, the
    app's own shutdown raises ``RuntimeError('pool')``."""

    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("boom")

    async def watchdog() -> None:
        await anyio.lowlevel.checkpoint()
        raise SystemExit(3)

    tasks = {"fail": fail, "exit": watchdog}

    async def spawn(request: Request) -> PlainTextResponse:
        tether.spawn(tasks[request.query_params["kind"]])
        return PlainTextResponse("spawned")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        yield
        events.append("app shut down")  # not in a finally: runs only normally
        if shutdown_fails:
            raise RuntimeError("pool")

    app = Starlette(
        routes=[Route("/spawn", spawn, methods=["POST"])], lifespan=lifespan
    )
    return TaskRegistryMiddleware(app, **options)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_failure_in_raise_mode_lets_the_apps_own_shutdown_run_then_raises(
    backend: Literal["asyncio", "trio"],
) -> None:
    """Regression (issue 19): the failure was raised from the app's receive(), so
    the app's own shutdown never ran. Now, as around a task group, the app's
    shutdown runs, the server is told lifespan.shutdown.failed, and the group is
    raised from the lifespan."""
    events: list[str] = []
    app = fatal_app(events, on_error="raise")
    with (
        pytest.raises(ExceptionGroup) as raised,
        TestClient(app, backend=backend) as client,
    ):
        assert client.post("/spawn", params={"kind": "fail"}).status_code == 200
    assert events == ["app shut down"]
    [failure] = raised.value.exceptions
    assert isinstance(failure, RuntimeError)
    assert str(failure) == "boom"


async def serve_one_request(
    app: ASGIApp, path: str
) -> tuple[Message, BaseException | None]:
    """Serve ``app`` as a server does: the lifespan startup, one ``POST path``,
    the lifespan shutdown. Return the app's answer to the shutdown and what its
    lifespan raised."""
    to_app, app_receives = anyio.create_memory_object_stream[Message](1)
    app_sends, from_app = anyio.create_memory_object_stream[Message](1)
    raised: list[BaseException] = []
    answer: Message = {}

    async def lifespan() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        try:
            await app(scope, app_receives.receive, app_sends.send)
        except BaseException as exc:  # what a server sees
            raised.append(exc)

    with to_app, app_receives, app_sends, from_app:
        async with anyio.create_task_group() as group:
            group.start_soon(lifespan)
            await to_app.send({"type": "lifespan.startup"})
            assert (await from_app.receive())["type"] == "lifespan.startup.complete"
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.post(path)).status_code == 200
            await anyio.wait_all_tasks_blocked()  # the spawned task has run
            await to_app.send({"type": "lifespan.shutdown"})
            answer = await from_app.receive()
    return answer, raised[0] if raised else None


@pytest.mark.anyio
async def test_when_the_app_shutdown_raises_too_the_registrys_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The registry's close raised, then the app's own shutdown raised: the app's
    exception goes to the server, and the registry's is logged, not lost."""
    events: list[str] = []
    app = fatal_app(events, shutdown_fails=True, on_error="raise", stop_server=None)
    answer, raised = await serve_one_request(app, "/spawn?kind=fail")
    assert events == ["app shut down"]
    assert repr(raised) == "RuntimeError('pool')"
    assert answer["type"] == "lifespan.shutdown.failed"
    [record] = [
        r
        for r in tether_records(caplog)
        if "raised at shutdown, and the app" in r.getMessage()
    ]
    assert record.getMessage() == (
        "TaskRegistry 'app' raised at shutdown, and the app's lifespan raised "
        "RuntimeError('pool') after it"
    )
    assert record.exc_info is not None
    assert "RuntimeError('boom')" in repr(record.exc_info[1])


@pytest.mark.anyio
async def test_a_system_exit_in_a_task_is_raised_after_the_apps_own_shutdown() -> None:
    events: list[str] = []
    causes: list[BaseException] = []
    app = fatal_app(events, stop_server=causes.append)
    answer, raised = await serve_one_request(app, "/spawn?kind=exit")
    assert isinstance(raised, SystemExit)
    assert raised.code == 3
    assert causes == [raised]  # stop_server was called once, with it
    assert events == ["app shut down"]
    assert answer["type"] == "lifespan.shutdown.failed"
    assert answer["message"].endswith("SystemExit: 3")


def test_a_bad_stop_server_fails_at_once() -> None:
    with pytest.raises(TypeError, match=r"stop_server='SIGTERM'\): stop_server must"):
        TaskRegistryMiddleware(bare_app, stop_server="SIGTERM")  # type: ignore[arg-type]


def test_bad_signals_fail_at_once() -> None:
    """Regression: ``signals="SIGINT"`` was accepted, then at shutdown (uvicorn in
    the main thread) raised an obscure TypeError before the drain, so the tasks
    were cancelled instead of drained."""
    with pytest.raises(TypeError, match=r"signals='SIGINT'\): signals must be"):
        TaskRegistryMiddleware(bare_app, signals="SIGINT")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"signals=\['SIGINT'\]\): signals must be"):
        TaskRegistryMiddleware(bare_app, signals=["SIGINT"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"signals=<Signals.SIGINT: 2>\)"):
        TaskRegistryMiddleware(bare_app, signals=signal.SIGINT)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_without_a_handler_for_the_signal_the_server_is_not_stopped_but_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    app = fatal_app(events, on_error="raise")  # stop_server=signal.SIGTERM
    answer, raised = await serve_one_request(app, "/spawn?kind=fail")
    # No server handles SIGTERM in a test process: nothing is stopped, but said.
    [warning] = [r for r in caplog.records if "while the app runs" in r.getMessage()]
    assert warning.getMessage() == (
        "TaskRegistry 'app' is cancelling its tasks while the app runs (a task "
        "failed in raise mode: RuntimeError('boom')): nothing in this process "
        "handles SIGTERM, so the server was not stopped; pass stop_server= a "
        "callable that stops it"
    )
    assert isinstance(raised, ExceptionGroup)
    assert events == ["app shut down"]
    assert answer["type"] == "lifespan.shutdown.failed"
    assert "RuntimeError: boom" in answer["message"]  # the traceback
