"""tether.aiohttp under aiohttp's own server on 127.0.0.1, driven by aiohttp's
client. aiohttp runs on asyncio: these run on asyncio and asyncio with uvloop."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from aiohttp import web

import tether
import tether.aiohttp
from recipes import aiohttp_app, aiohttp_jobs
from servers import (
    BOUND,
    Mailer,
    aiohttp_server,
    failure_log,
    listening_socket,
    url_of,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from aiohttp.typedefs import Handler

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

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


# -- a task that ends the app (the programs are in test_asgi_signals.py) -------------


async def failing() -> None:
    await anyio.lowlevel.checkpoint()
    raise RuntimeError("boom")


def failing_app(failed: anyio.Event, **options: Any) -> web.Application:
    """``POST /fail`` spawns a task that fails; ``POST /spawn`` one that works."""

    async def fail_then_say(request: web.Request) -> web.Response:
        handle = tether.spawn(failing)
        handle.add_done_callback(lambda _: failed.set())
        return web.Response(text="spawned")

    async def spawn(request: web.Request) -> web.Response:
        tether.spawn(anyio.lowlevel.checkpoint)
        return web.Response(text="spawned")

    app = web.Application()
    app.router.add_post("/fail", fail_then_say)
    app.router.add_post("/spawn", spawn)
    tether.aiohttp.setup(app, on_error="raise", **options)
    return app


async def test_with_stop_server_none_the_app_serves_on_and_cleanup_raises_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed = anyio.Event()
    app = failing_app(failed, stop_server=None)
    with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012 - raised at cleanup
        async with (
            aiohttp_server(app) as url,
            aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
        ):
            async with client.post("/fail") as response:
                assert response.status == 200
            await failed.wait()
            assert app[tether.aiohttp.REGISTRY].state is not tether.RegistryState.OPEN
            async with client.post("/spawn") as response:
                assert response.status == 500  # RegistryClosed
    [failure] = raised.value.exceptions
    assert str(failure) == "boom"
    assert not [r for r in caplog.records if "while the app runs" in r.getMessage()]


async def test_stop_server_may_be_a_callable_given_the_failure() -> None:
    failed = anyio.Event()
    causes: list[BaseException] = []
    app = failing_app(failed, stop_server=causes.append)
    with pytest.raises(ExceptionGroup) as raised:  # noqa: PT012 - raised at cleanup
        async with (
            aiohttp_server(app) as url,
            aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
        ):
            async with client.post("/fail") as response:
                assert response.status == 200
            await failed.wait()
            assert len(causes) == 1  # called once, as the registry starts cancelling
    assert causes == list(raised.value.exceptions)


# -- the drain order -----------------------------------------------------------------


class Draining(logging.Handler):
    """Sets ``started`` when a registry logs that it drains."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.started = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "is draining" in record.getMessage():
            self.started.set()


async def stop_during_a_request(
    app: web.Application, after_stop: Callable[[], Awaitable[None]]
) -> None:
    """Serve ``app``; with ``GET /slow`` in flight, stop the server; once aiohttp
    waits for that handler (after every ``on_shutdown`` handler), run
    ``after_stop`` in it, then let it answer."""
    in_flight, stopping = anyio.Event(), anyio.Event()

    async def slow(request: web.Request) -> web.Response:
        in_flight.set()
        await stopping.wait()
        await after_stop()
        return web.Response(text="done")

    async def on_shutdown(app: web.Application) -> None:
        stopping.set()

    async def get(client: aiohttp.ClientSession) -> None:
        async with client.get("/slow") as response:
            assert await response.text() == "done"

    app.router.add_get("/slow", slow)
    app.on_shutdown.append(on_shutdown)  # after setup's own
    with anyio.fail_after(BOUND):
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            sock = listening_socket()
            await web.SockSite(runner, sock).start()
            async with (
                aiohttp.ClientSession(url_of(sock), timeout=TIMEOUT) as client,
                anyio.create_task_group() as group,
            ):
                group.start_soon(get, client)
                await in_flight.wait()
                await runner.cleanup()
        finally:
            if runner.server is not None:  # pragma: no cover - the test failed
                await runner.cleanup()


async def test_by_default_the_registry_drains_once_aiohttp_has_waited_for_them() -> (
    None
):
    """Issue 27: the order, and so the worst case: aiohttp's shutdown_timeout
    for the open handlers, then the registry's for its tasks."""
    events: list[str] = []
    release = anyio.Event()
    draining = Draining()

    async def job() -> None:
        await release.wait()
        events.append("job finished")

    async def after_stop() -> None:
        registry = app[tether.aiohttp.REGISTRY]
        events.append(f"handler still open, registry {registry.state.name}")
        tether.spawn(job, name="job")  # an open handler may still spawn

    async def release_once_draining() -> None:
        await draining.started.wait()
        events.append("registry drains")
        release.set()

    app = web.Application()
    tether.aiohttp.setup(app, shutdown_timeout=BOUND)
    logging.getLogger("tether").addHandler(draining)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(release_once_draining)
            await stop_during_a_request(app, after_stop)
    finally:
        logging.getLogger("tether").removeHandler(draining)
    assert events == [
        "handler still open, registry OPEN",
        "registry drains",
        "job finished",
    ]


async def test_with_drain_on_shutdown_the_deadline_counts_while_aiohttp_waits(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27: drain="on-shutdown" makes the worst case the larger of the two
    timeouts, not their sum: here the registry's deadline has passed by the time
    aiohttp is done with the open handler, so its task is cancelled at once.

    Regression: this test let the handler sleep 0.1 s past a 0.05 s deadline, and
    passed just as well with the option doing nothing (the drain at cleanup then
    waited its own 0.05 s and cancelled the same task). Here the clock that
    ``on_shutdown`` reads is an hour behind, so the deadline it sets, an
    hour's ``shutdown_timeout`` away, has passed; without the option, the drain
    would wait that hour and the test's bound fails it. No real time passes."""
    events: list[str] = []

    async def job() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            events.append("job cancelled")

    async def after_stop() -> None:
        registry = app[tether.aiohttp.REGISTRY]
        events.append(f"handler still open, registry {registry.state.name}")
        tether.spawn(job, name="job")  # an open handler may still spawn

    hour = 3600.0
    behind = SimpleNamespace(current_time=lambda: anyio.current_time() - hour)
    monkeypatch.setattr(tether.aiohttp, "anyio", behind)  # only on_shutdown reads it
    app = web.Application()
    tether.aiohttp.setup(app, shutdown_timeout=hour - 1, drain="on-shutdown")
    await stop_during_a_request(app, after_stop)
    assert events == ["handler still open, registry OPEN", "job cancelled"]
    messages = [r.getMessage() for r in caplog.records]
    assert "TaskRegistry 'app' cancelled 1 task(s) at shutdown: job" in messages
    # Regression: the INFO record said "for at most 3599 s before it cancels
    # them", the full shutdown_timeout, though the drain was cut at once.
    assert (
        "TaskRegistry 'app' is draining 1 task(s) (job), with no time left to "
        "drain: it cancels them at once" in messages
    )


async def test_with_drain_on_shutdown_the_info_record_states_the_time_left(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drain at cleanup gets what is left of the time counted from
    ``on_shutdown``, and its INFO record says that, not the whole
    ``shutdown_timeout``: here ``on_shutdown``'s clock is an hour behind and the
    timeout an hour and a minute, so about a minute is left (the job then
    finishes once the drain has begun)."""
    release = anyio.Event()
    draining = Draining()

    async def job() -> None:
        await release.wait()

    async def after_stop() -> None:
        tether.spawn(job, name="job")

    async def release_once_draining() -> None:
        await draining.started.wait()
        release.set()

    hour = 3600.0
    behind = SimpleNamespace(current_time=lambda: anyio.current_time() - hour)
    monkeypatch.setattr(tether.aiohttp, "anyio", behind)  # only on_shutdown reads it
    app = web.Application()
    tether.aiohttp.setup(app, shutdown_timeout=hour + 60, drain="on-shutdown")
    logging.getLogger("tether").addHandler(draining)
    try:
        with caplog.at_level(logging.INFO, logger="tether"):
            async with anyio.create_task_group() as group:
                group.start_soon(release_once_draining)
                await stop_during_a_request(app, after_stop)
    finally:
        logging.getLogger("tether").removeHandler(draining)
    [record] = [r for r in caplog.records if "is draining" in r.getMessage()]
    left = float(record.getMessage().split("for at most ")[1].split(" s ")[0])
    assert 0 < left <= 60


async def test_a_failure_once_the_server_stops_does_not_stop_it_again() -> None:
    """Once ``on_shutdown`` ran, the server is stopping: a task failing in raise
    mode while aiohttp waits for an open handler does not call ``stop_server``
    (with the default signal, a second SIGTERM would cut ``web.run_app``'s
    cleanup short); the failure is raised by the registry's close."""
    calls: list[BaseException] = []

    async def failing() -> None:
        raise RuntimeError("late")

    async def after_stop() -> None:
        handle = tether.spawn(failing, name="late")
        await handle.wait()

    app = web.Application()
    tether.aiohttp.setup(app, on_error="raise", stop_server=calls.append)
    with pytest.raises(ExceptionGroup) as raised:
        await stop_during_a_request(app, after_stop)
    assert calls == []
    # The registry's close raised it in cleanup, out of the test's task group.
    [registry_group] = raised.value.exceptions
    assert repr(registry_group) == (
        "ExceptionGroup(\"unhandled errors in TaskRegistry 'app'\", "
        "[RuntimeError('late')])"
    )


# -- setup: options and messages -----------------------------------------------------


async def test_setup_takes_hooks_and_context_as_the_registry_does() -> None:
    request_id: ContextVar[str] = ContextVar("request_id", default="none")
    spawned: list[str] = []
    ids: list[str] = []

    class Spawned(tether.Hooks):
        def spawned(self, handle: tether.Handle[Any]) -> None:
            spawned.append(handle.name)

    async def job() -> None:
        ids.append(request_id.get())

    async def handler(request: web.Request) -> web.Response:
        request_id.set("request 1")
        await tether.spawn(job, name="job")
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/", handler)
    tether.aiohttp.setup(app, hooks=Spawned(), context="registry")
    async with (
        aiohttp_server(app) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
        client.get("/") as response,
    ):
        assert response.status == 200
    assert spawned == ["job"]
    assert ids == ["none"]  # the request's context stayed with the request


async def test_tether_spawn_at_startup_and_cleanup_goes_to_the_apps_registry() -> None:
    """Regression (issue 27): tether.spawn in on_startup raised NoRegistry, whose
    message said to call setup(), which was called."""
    ran: list[str] = []

    async def job(what: str) -> None:
        await anyio.lowlevel.checkpoint()
        ran.append(what)

    async def pool(app: web.Application) -> AsyncIterator[None]:
        """Added before setup: the registry opens before it and drains before
        it closes."""
        tether.spawn(job, "pool startup")
        yield
        assert "pool startup" in ran
        ran.append("pool closed")

    async def on_startup(app: web.Application) -> None:
        assert tether.current_registry() is app[tether.aiohttp.REGISTRY]
        tether.spawn(job, "startup")

    async def cache(app: web.Application) -> AsyncIterator[None]:
        yield
        tether.spawn(job, "cache cleanup")  # closes before the registry: drained

    app = web.Application()
    app.cleanup_ctx.append(pool)
    tether.aiohttp.setup(app, shutdown_timeout=BOUND)
    app.cleanup_ctx.append(cache)
    app.on_startup.append(on_startup)
    async with aiohttp_server(app):
        pass
    assert ran[-1] == "pool closed"
    assert sorted(ran[:-1]) == ["cache cleanup", "pool startup", "startup"]


async def test_a_startup_that_fails_before_the_registrys_context_still_closes_it() -> (
    None
):
    async def broken(app: web.Application) -> AsyncIterator[None]:
        if not app.frozen:  # always: aiohttp freezes the app after its startup
            raise ConnectionRefusedError("no database")
        yield  # pragma: no cover

    app = web.Application()
    app.cleanup_ctx.append(broken)
    tether.aiohttp.setup(app)
    runner = web.AppRunner(app)
    with pytest.raises(ConnectionRefusedError):
        await runner.setup()
    await runner.cleanup()
    assert app[tether.aiohttp.REGISTRY].state is tether.RegistryState.CLOSED


def test_setup_on_a_sub_application_after_add_subapp_says_what_to_do() -> None:
    app, admin = web.Application(), web.Application()
    app.add_subapp("/admin", admin)
    with pytest.raises(RuntimeError) as raised:
        tether.aiohttp.setup(admin)
    message = str(raised.value)
    assert "app.add_subapp() (and app.add_domain()) freezes a sub-application" in (
        message
    )
    assert (
        "Call tether.aiohttp.setup(subapp) before app.add_subapp(prefix, subapp)"
        in (message)
    )


def test_setup_twice_is_refused() -> None:
    app = web.Application()
    tether.aiohttp.setup(app)
    with pytest.raises(RuntimeError, match="already called on this application"):
        tether.aiohttp.setup(app, limit=3)


def test_bad_drain_or_stop_server_fail_at_once() -> None:
    with pytest.raises(ValueError, match=r"setup\(drain='later'\): use 'on-cleanup'"):
        tether.aiohttp.setup(web.Application(), drain="later")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"setup\(stop_server=15\): stop_server must"):
        tether.aiohttp.setup(web.Application(), stop_server=15)  # type: ignore[arg-type]


def test_a_drain_that_is_not_a_string_is_a_type_error() -> None:
    """Regression: ``drain=True`` (a wrong type) raised ValueError; the quality bar
    makes a wrong type a TypeError."""
    app = web.Application()
    with pytest.raises(TypeError, match=r"setup\(drain=True\): use 'on-cleanup'"):
        tether.aiohttp.setup(app, drain=True)  # type: ignore[arg-type]
    tether.aiohttp.setup(app)  # nothing was changed: setup still works


# -- limits per kind of work (issue 27, item 3) ----------------------------------------


class Scanner:
    """Scans that the test releases one folder at a time."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.releases: dict[str, anyio.Event] = {}

    def release(self, folder: str) -> None:
        self.releases.setdefault(folder, anyio.Event()).set()

    async def scan(self, folder: str) -> None:
        self.running.append(folder)
        await self.releases.setdefault(folder, anyio.Event()).wait()
        self.running.remove(folder)


async def test_with_one_limit_for_everything_the_follow_ups_wait_behind_the_jobs() -> (
    None
):
    """The issue's finding, kept as the reason for pools: with aiojobs' habit of
    ``limit=2`` on the whole registry, the notifications that jobs 0 and 1 spawn
    queue behind jobs 2 and 3, and arrive only once those have run."""
    scanner = Scanner()

    async def job(folder: str) -> None:
        tether.spawn(scanner.scan, f"notify {folder}", name="notify")
        await scanner.scan(folder)

    async def start(request: web.Request) -> web.Response:
        for i in range(4):
            tether.spawn(job, str(i), name="job")
        return web.json_response({}, status=202)

    app = web.Application()
    app.router.add_post("/start", start)
    tether.aiohttp.setup(app, limit=2, shutdown_timeout=0)
    async with (
        aiohttp_server(app) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
    ):
        async with client.post("/start") as response:
            assert response.status == 202
        await anyio.wait_all_tasks_blocked()
        registry = app[tether.aiohttp.REGISTRY]
        assert scanner.running == ["0", "1"]
        assert sorted(h.name for h in registry if h.status is tether.Status.QUEUED) == [
            "job",
            "job",
            "notify",
            "notify",
        ]


async def test_with_a_pool_the_follow_ups_do_not_wait_behind_the_jobs() -> None:
    """Issue 27: the jobs run in a pool of two; a job's ``tether.spawn`` goes to
    the app's registry, so the start notifications of jobs 0 and 1 reach the
    websocket while 0 and 1 still run and 2 and 3 wait (were they queued behind
    the jobs, the first receive would never end)."""
    scanner = Scanner()
    app = aiohttp_jobs.create_app(scanner)
    async with (
        aiohttp_server(app) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
        client.ws_connect("/progress") as progress,
    ):
        await anyio.wait_all_tasks_blocked()  # the websocket is registered
        for i in range(4):
            async with client.post("/scan", params={"folder": str(i)}) as response:
                assert response.status == 202
        first = {await progress.receive_str(), await progress.receive_str()}
        assert first == {"started 0", "started 1"}
        assert sorted(scanner.running) == ["0", "1"]
        async with client.get("/jobs") as response:
            assert await response.json() == {"running": 2, "queued": 2}
        for i in range(4):
            scanner.release(str(i))
        rest = {await progress.receive_str() for _ in range(6)}
        assert rest == {
            "finished 0",
            "finished 1",
            "started 2",
            "started 3",
            "finished 2",
            "finished 3",
        }
    stats = app[aiohttp_jobs.JOBS].statistics()
    assert (stats.spawned, stats.succeeded) == (4, 4)


async def test_a_handler_waits_for_room_in_the_pool_s_queue_as_under_aiojobs() -> None:
    """aiojobs' ``spawn`` waits while the pending queue is full; the recipe's
    ``spawn_when_room`` does the same: the fourth scan's request is answered once
    a queued scan has started, not refused."""
    scanner = Scanner()
    app = aiohttp_jobs.create_app(scanner, limit=2, max_pending=1)
    answered: list[int] = []
    fourth = anyio.Event()

    @web.middleware
    async def seen(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.query.get("folder") == "3":
            fourth.set()  # its handler runs up to its wait from here on
        return await handler(request)

    app.middlewares.append(seen)

    async def post(client: aiohttp.ClientSession, folder: str) -> None:
        async with client.post("/scan", params={"folder": folder}) as response:
            answered.append(response.status)

    async with (
        aiohttp_server(app) as url,
        aiohttp.ClientSession(url, timeout=TIMEOUT) as client,
    ):
        for i in range(3):
            await post(client, str(i))
        assert answered == [202] * 3
        async with anyio.create_task_group() as group:
            group.start_soon(post, client, "3")
            await fourth.wait()
            await anyio.wait_all_tasks_blocked()
            assert answered == [202] * 3  # waiting for room
            async with client.get("/jobs") as response:
                assert await response.json() == {"running": 2, "queued": 1}
            scanner.release("0")  # scan 2 starts: room for scan 3
        assert answered == [202] * 4
        for i in range(4):
            scanner.release(str(i))
