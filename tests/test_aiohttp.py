"""tether.aiohttp under aiohttp's own server on 127.0.0.1, driven by aiohttp's
client. aiohttp runs on asyncio: these run on asyncio and asyncio with uvloop."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import tether
import tether.aiohttp
from recipes import aiohttp_app
from servers import BOUND, Mailer, aiohttp_server, failure_log

pytestmark = pytest.mark.anyio

TIMEOUT = aiohttp.ClientTimeout(total=BOUND)


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """aiohttp runs on asyncio, with or without uvloop."""
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


async def test_the_response_returns_before_the_work_ends_and_the_work_completes() -> (
    None
):
    mailer = Mailer()
    app = aiohttp_app.create_app(mailer)
    async with (
        aiohttp_server(app) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
    ):
        async with client.post("/signup", params={"address": "ada@x.org"}) as response:
            assert response.status == 202
        await mailer.started.wait()
        assert not mailer.finished.is_set()
        async with client.get("/tasks") as response:
            assert await response.json() == {"running": 1}
        mailer.release.set()
        await mailer.finished.wait()
    assert mailer.sent == ["ada@x.org"]


async def test_spawned_work_survives_the_client_disconnecting() -> None:
    mailer = Mailer()
    handler_cancelled = anyio.Event()
    app = aiohttp_app.create_app(mailer)

    async def slow(request: web.Request) -> web.Response:
        tether.spawn(mailer.send, request.query["address"])
        try:
            await anyio.sleep_forever()
        finally:
            handler_cancelled.set()  # the client left
        raise AssertionError("unreachable")  # pragma: no cover

    app.router.add_get("/slow", slow)
    # The server cancels the handler of a client that hangs up.
    async with aiohttp_server(app, handler_cancellation=True) as url:
        async with aiohttp.ClientSession(url, timeout=TIMEOUT) as client:
            request = client.get("/slow", params={"address": "ada@x.org"})
            async with anyio.create_task_group() as group:
                group.start_soon(request.__aenter__)
                await mailer.started.wait()
                group.cancel_scope.cancel()  # the client gives up and hangs up
        await handler_cancelled.wait()
        mailer.release.set()
        await mailer.finished.wait()
    assert mailer.sent == ["ada@x.org"]


async def test_a_failing_job_is_logged_by_name_and_later_requests_are_unaffected() -> (
    None
):
    mailer = Mailer()
    async with (
        failure_log() as log,
        aiohttp_server(aiohttp_app.create_app(mailer)) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
    ):
        async with client.post("/signup", params={"address": "bounce@x.org"}) as r:
            assert r.status == 202
        await log.logged.wait()
        [record] = log.records
        assert record.getMessage() == (
            "Task 'welcome bounce@x.org' of TaskRegistry 'app' failed"
        )
        mailer.started = anyio.Event()
        async with client.post("/signup", params={"address": "ada@x.org"}) as r:
            assert r.status == 202
        mailer.release.set()
        await mailer.finished.wait()
    assert mailer.sent == ["ada@x.org"]


async def test_stopping_the_app_cancels_what_outlives_shutdown_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailer = Mailer()  # never released
    app = aiohttp_app.create_app(mailer, shutdown_timeout=0)
    async with (
        aiohttp_server(app) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
    ):
        async with client.post("/signup", params={"address": "ada@x.org"}) as r:
            assert r.status == 202
        await mailer.started.wait()
    assert app[tether.aiohttp.REGISTRY].state is tether.RegistryState.CLOSED
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tether" and r.levelno == logging.WARNING
    ]
    assert warnings == [
        "TaskRegistry 'app' cancelled 1 task(s) at shutdown: welcome ada@x.org"
    ]


def test_bad_options_fail_at_once() -> None:
    with pytest.raises(ValueError, match=r"TaskRegistry\(limit=0\)"):
        tether.aiohttp.setup(web.Application(), limit=0)
