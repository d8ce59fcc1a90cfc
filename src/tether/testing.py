"""A pytest plugin: a registry per test, and a check that a test leaks no task.

Registered through the ``pytest11`` entry point, so it loads wherever tether is
installed, and inert unless a test uses it:

- the fixture ``tether_registry``: an open :class:`~tether.TaskRegistry` bound for
  the test, on the test's anyio backend (it needs anyio's pytest plugin, as every
  async test of an anyio project does);
- the marker ``@pytest.mark.tether_no_leaks`` (or the ini option
  ``tether_no_leaks = true`` for every test): the test errors at teardown if it
  leaves a task of ``tether_registry`` or of tether's default registry (a
  ``tether.spawn`` where no registry was bound) running, a task failure that nobody
  awaited (tether reported it on its logger), or, on asyncio, a raw task pending.
  Each is named with its spawn site. ``allow=["name-glob", ...]`` lets tasks meant
  to remain do so; ``tether_no_leaks(False)`` turns the check off for one test.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from ._default import live_default_tasks
from ._dump import suspended_at
from ._handle import CALLBACK_RAISED
from ._log import logger
from ._registry import RegistryState, TaskRegistry, _open_registries

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ._handle import Handle

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "pytest_runtest_teardown",
    "tether_registry",
]

_MARKER = (
    "tether_no_leaks(enabled=True, *, allow=()): error at teardown if the test leaves "
    "tasks running, task failures unawaited or raw asyncio tasks pending; `allow` "
    "takes name globs of tasks meant to remain"
)


#: Where anyio's backends live: the tasks of its pytest runner are not leaks.
_ANYIO_RUNNER = os.path.join(os.path.dirname(anyio.__file__), "_backends", "")
#: tether's own code: a raw task running it belongs to a registry or a gather.
_TETHER = os.path.join(os.path.dirname(__file__), "")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ini option ``tether_no_leaks``."""
    parser.addini(
        "tether_no_leaks",
        "check every test as @pytest.mark.tether_no_leaks does",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker ``tether_no_leaks``."""
    config.addinivalue_line("markers", _MARKER)


class _LeakCheck:
    """What one test with the check on has left behind."""

    def __init__(self, allow: tuple[str, ...]) -> None:
        self.allow = allow
        self.found: list[str] = []
        self.recorder = _FailureRecorder(self)
        # The registries open before the test: one the test opens and leaves open
        # keeps its tasks running after it, on every backend.
        self.open_before = set(_open_registries)

    def open_registries(self) -> None:
        """Name every registry the test opened and left open, with its tasks (or,
        once the event loop's end cancelled them, how many there were)."""
        for registry in set(_open_registries) - self.open_before:
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
            pytest.fail(
                "tether_no_leaks: the test left behind\n  "
                + "\n  ".join(self.found)
                + "\nWait for the tasks (await handle, registry.wait_idle()), await "
                "or handle the failures, or allow them by name: "
                "@pytest.mark.tether_no_leaks(allow=['name-glob'])",
                pytrace=False,
            )


_check_key = pytest.StashKey[_LeakCheck]()


def _leak_check(request: pytest.FixtureRequest) -> _LeakCheck | None:
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
    if _check_key not in stash:
        stash[_check_key] = _LeakCheck(allow)
    return stash[_check_key]


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


@pytest.fixture(autouse=True)
def _tether_no_leaks(request: pytest.FixtureRequest) -> None:
    check = _leak_check(request)
    if check is None:
        return
    logger.addHandler(check.recorder)
    if "anyio_backend" in request.fixturenames:
        request.getfixturevalue("_tether_raw_tasks")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Once every fixture is torn down, fail the test on what it left behind."""
    try:
        yield
    finally:
        check = item.stash.get(_check_key, None)
        if check is not None:
            logger.removeHandler(check.recorder)
    if check is not None:
        check.recorder.collect()
        check.open_registries()
        check.fail_if_found()


@pytest.fixture
async def _tether_raw_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The tasks of tether's default registry, and on asyncio the raw tasks,
    running at the end that were not there at the start."""
    import asyncio  # only asks about asyncio's tasks; on trio there are none

    defaults_before = {handle for handle, _ in live_default_tasks()}
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio
        loop = None
    before = set[object]() if loop is None else asyncio.all_tasks(loop)
    yield
    check = request.node.stash.get(_check_key, None)
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
        if code is not None and code.co_filename.startswith(_ANYIO_RUNNER):
            continue  # anyio's pytest runner runs each fixture step in a task
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


@pytest.fixture
async def tether_registry(
    request: pytest.FixtureRequest,
) -> AsyncIterator[TaskRegistry]:
    """An open :class:`~tether.TaskRegistry`, bound for the test, on its anyio
    backend.

    Named ``"tether_registry"``, with ``debug=True`` (handles record their spawn
    site). A failing task that nobody awaits is logged on logger ``"tether"`` with
    its spawn site. At teardown, tasks still running are cancelled and logged, never
    waited for (a test waits for what it needs); with ``tether_no_leaks`` they
    fail the test.

    .. versionadded:: 0.2
    """
    registry = TaskRegistry(name="tether_registry", on_error=_log_with_site, debug=True)
    with anyio.CancelScope() as closing:
        async with registry:
            yield registry
            check = _leak_check(request)
            if check is not None:
                for handle in registry:
                    check.add("task", handle.name, f"spawned at {handle.spawned_at}")
            # Closing in a cancelled scope cancels what is left (and logs it)
            # instead of draining.
            closing.cancel()


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
