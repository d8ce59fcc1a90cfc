"""The leak check and the test's registry of :mod:`tether.testing`: what its
fixtures do under anyio's plugin and under pytest-asyncio (``_pytest_asyncio``)
alike, apart from the plugin's hooks so that both import it and neither the other.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from ._default import DefaultRegistry, live_default_tasks
from ._dump import suspended_at
from ._handle import CALLBACK_RAISED
from ._log import logger
from ._registry import RegistryState, TaskRegistry, open_registries

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ._handle import Handle

#: Where anyio's backends live: the tasks of its pytest runner are not leaks.
_ANYIO_RUNNER = os.path.join(os.path.dirname(anyio.__file__), "_backends", "")
#: tether's own code: a raw task running it belongs to a registry or a gather.
_TETHER = os.path.join(os.path.dirname(__file__), "")


class _LeakCheck:
    """What one test with the check on has left behind."""

    def __init__(self, allow: tuple[str, ...]) -> None:
        self.allow = allow
        self.found: list[str] = []
        self.recorder = _FailureRecorder(self)
        # The registries open before the test: one the test opens and leaves open
        # keeps its tasks running after it, on every backend.
        self.open_before = set(open_registries)

    def open_registries(self) -> None:
        """Name every registry the test opened and left open, with its tasks (or,
        once the event loop's end cancelled them, how many there were)."""
        for registry in set(open_registries) - self.open_before:
            if isinstance(registry, DefaultRegistry):
                # Opened by a spawn with no registry bound, and open while its
                # loop runs (a wider loop scope): its tasks are named apart.
                continue
            handles = list(registry)
            for handle in handles:
                self.add(
                    f"task (of TaskRegistry {registry.name!r}, left open)",
                    handle.name,
                    "spawned at "
                    + (handle.spawned_at or "an unknown site: debug=True records it"),
                )
            if not handles and registry.state is not RegistryState.CLOSED:
                stats = registry.statistics()
                self.add(
                    "TaskRegistry",
                    registry.name,
                    f"left {registry.state.name} with {stats.spawned} task(s) "
                    "spawned; the event loop's end cancelled what was left",
                )

    def allowed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allow)

    def add(self, what: str, name: str, where: str) -> None:
        if not self.allowed(name):
            self.found.append(f"{what} {name!r} ({where})")

    def fail_if_found(self) -> None:
        if self.found:
            raw = any(found.startswith("asyncio task ") for found in self.found)
            pytest.fail(
                "tether_no_leaks: the test left behind\n  "
                + "\n  ".join(self.found)
                + "\nWait for the tasks (await handle, registry.wait_idle()), await "
                "or handle the failures, or allow them by name: "
                "@pytest.mark.tether_no_leaks(allow=['name-glob'])"
                + (
                    "\nA raw asyncio task: await it before the test ends (after "
                    "task.cancel() if it would run on), or spawn it with "
                    "tether.spawn() so that a registry owns it"
                    if raw
                    else ""
                ),
                pytrace=False,
            )


check_key = pytest.StashKey[_LeakCheck]()


def leak_check(request: pytest.FixtureRequest) -> _LeakCheck | None:
    """The check for this test, if the marker or the ini option turns it on."""
    marker = request.node.get_closest_marker("tether_no_leaks")
    if marker is None:
        enabled = bool(request.config.getini("tether_no_leaks"))
        allow: tuple[str, ...] = ()
    else:
        enabled = bool(
            marker.args[0] if marker.args else marker.kwargs.get("enabled", True)
        )
        allow = tuple(marker.kwargs.get("allow", ()))
        if isinstance(marker.kwargs.get("allow", ()), str):
            raise TypeError(
                "tether_no_leaks(allow=...) takes a list of name globs: "
                f"allow=[{marker.kwargs['allow']!r}]"
            )
    if not enabled:
        return None
    stash: pytest.Stash = request.node.stash
    if check_key not in stash:
        stash[check_key] = _LeakCheck(allow)
    return stash[check_key]


class _FailureRecorder(logging.Handler):
    """Collects the task failures tether reports on its logger: none was awaited.

    Read at teardown, not as they come: a record that the test has claimed by
    setting ``record.tether_asserted = True`` (it provoked the failure and
    asserted the record) is no leak.
    """

    def __init__(self, check: _LeakCheck) -> None:
        super().__init__(logging.ERROR)
        self.check = check
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        task: object = getattr(record, "tether_task", None)
        if isinstance(task, str) and record.exc_info is not None:
            self.records.append(record)

    def collect(self) -> None:
        records, self.records = self.records, []
        for record in records:
            if getattr(record, "tether_asserted", False):
                continue
            task: str = record.__dict__["tether_task"]
            where: object = getattr(record, "tether_spawned_at", None)
            self.check.add(
                # A done-callback or a hook that raised is not the task's failure.
                "exception in a done-callback or hook of task"
                if record.msg == CALLBACK_RAISED
                else "failure of task",
                task,
                f"spawned at {where}"
                if isinstance(where, str)
                else record.getMessage(),
            )


@asynccontextmanager
async def watching_tasks(
    request: pytest.FixtureRequest, runner: str | None = None
) -> AsyncGenerator[None]:
    """The tasks of tether's default registry, and on asyncio the raw tasks,
    running at the end that were not there at the start. ``runner``: the folder of
    the test runner whose own tasks are not leaks (anyio's backends by default).

    Entered and left in the test's event loop, not always in one task (pytest-asyncio
    runs a fixture's setup and teardown as two): it holds no cancel scope."""
    import asyncio  # only asks about asyncio's tasks; on trio there are none

    runner = _ANYIO_RUNNER if runner is None else runner
    defaults_before = {handle for handle, _ in live_default_tasks()}
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio
        loop = None
    before = set[object]() if loop is None else asyncio.all_tasks(loop)
    yield
    check = request.node.stash.get(check_key, None)
    if check is None:  # pragma: no cover - set up by _tether_no_leaks
        return
    ours = set[object]()
    for handle, task in live_default_tasks():
        ours.add(task)
        if handle not in defaults_before:
            check.add(
                "task of the default registry",
                handle.name,
                "spawned where no registry was bound, at "
                f"{handle.spawned_at or 'an unrecorded site (run with -X dev)'}",
            )
    if loop is None:
        return
    current = asyncio.current_task(loop)
    for task in asyncio.all_tasks(loop) - before:
        if task is current or task.done() or task in ours:
            continue
        coro: Any = task.get_coro()
        code = getattr(coro, "cr_code", None)
        if code is not None and code.co_filename.startswith(runner):
            continue  # the test runner's own, such as anyio's runner task
        if code is not None and code.co_filename.startswith(_TETHER):
            continue  # a registry's task: named with its registry, on every backend
        check.add(
            "asyncio task",
            task.get_name(),
            "suspended at " + suspended_at(coro)
            if code is None
            else f"{code.co_name} defined at {code.co_filename}:{code.co_firstlineno}, "
            f"suspended at {suspended_at(coro)}",
        )


@asynccontextmanager
async def registry_for_test(
    request: pytest.FixtureRequest,
) -> AsyncGenerator[TaskRegistry]:
    """``tether_registry`` where setup and teardown may run in two tasks
    (pytest-asyncio): opened with ``open()``, bound, then closed in a cancelled
    scope of the teardown's own, so that what is left is cancelled, not drained."""
    registry = new_registry()
    await registry.open()
    try:
        with registry.bind():
            yield registry
    finally:
        note_left_running(request, registry)
        with anyio.CancelScope() as closing:
            closing.cancel()
            await registry.aclose()


def new_registry() -> TaskRegistry:
    return TaskRegistry(name="tether_registry", on_error=_log_with_site, debug=True)


def note_left_running(request: pytest.FixtureRequest, registry: TaskRegistry) -> None:
    """With the leak check on, name the tasks of ``registry`` still running."""
    check = leak_check(request)
    if check is not None:
        for handle in registry:
            check.add("task", handle.name, f"spawned at {handle.spawned_at}")


def _log_with_site(handle: Handle[Any], exc: Exception) -> None:
    logger.error(
        "Task %r of TaskRegistry 'tether_registry' failed (spawned at %s)",
        handle.name,
        handle.spawned_at,
        exc_info=exc,
        extra={
            "tether_registry": "tether_registry",
            "tether_task": handle.name,
            "tether_spawned_at": handle.spawned_at,
        },
    )
