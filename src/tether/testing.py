"""A pytest plugin: a registry per test, and a check that a test leaks no task.

Registered through the ``pytest11`` entry point, so it loads wherever tether is
installed, and inert unless a test uses it:

- the fixture ``tether_registry``: an open :class:`~tether.TaskRegistry` bound for
  the test, in the test's event loop: under anyio's pytest plugin (a test that has
  an ``anyio_backend``: asyncio, uvloop, trio) or under pytest-asyncio (a test it
  runs, in strict or auto mode, at any loop scope);
- the marker ``@pytest.mark.tether_no_leaks`` (or the ini option
  ``tether_no_leaks = true`` for every test): the test errors at teardown if it
  leaves a task of ``tether_registry`` or of tether's default registry (a
  ``tether.spawn`` where no registry was bound) running, a task failure that nobody
  awaited (tether reported it on its logger), or, on asyncio, a raw task pending.
  Each is named with its spawn site. ``allow=["name-glob", ...]`` lets tasks meant
  to remain do so; ``tether_no_leaks(False)`` turns the check off for one test.

What must run in the test's event loop (the registry, the look at the loop's tasks)
is a fixture of each test runner's own kind, chosen per test: an async fixture that
anyio's plugin runs, or one made with ``pytest_asyncio.fixture`` at the test's loop
scope (:mod:`tether._pytest_asyncio`, registered only when pytest-asyncio's plugin is
active, so that pytest-asyncio is never imported otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from ._leak_check import (
    check_key,
    leak_check,
    new_registry,
    note_left_running,
    watching_tasks,
)
from ._log import logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ._registry import TaskRegistry


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


#: The name pytest-asyncio's plugin is registered under (its pytest11 entry point).
_PYTEST_ASYNCIO = "asyncio"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ini option ``tether_no_leaks``."""
    parser.addini(
        "tether_no_leaks",
        "check every test as @pytest.mark.tether_no_leaks does",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker ``tether_no_leaks``; under pytest-asyncio, the fixtures
    that run in its event loops."""
    config.addinivalue_line("markers", _MARKER)
    if config.pluginmanager.has_plugin(_PYTEST_ASYNCIO):
        from . import _pytest_asyncio

        if _pytest_asyncio.SUPPORTED and not config.pluginmanager.is_registered(
            _pytest_asyncio
        ):
            config.pluginmanager.register(_pytest_asyncio, "tether-pytest-asyncio")


def _in_loop(request: pytest.FixtureRequest, fixture: str) -> str | None:
    """The variant of ``fixture`` that runs in the test's event loop: anyio's, or
    pytest-asyncio's at the test's loop scope; None for a test with no loop."""
    if "anyio_backend" in request.fixturenames:
        return f"{fixture}_anyio"
    node = request.node
    if not isinstance(node, pytest.Function):
        return None  # pragma: no cover - requested by a wider-scoped fixture
    config = request.config
    if not config.pluginmanager.has_plugin(_PYTEST_ASYNCIO):
        return None
    from . import _pytest_asyncio

    if _pytest_asyncio.SUPPORTED:
        scope = _pytest_asyncio.loop_scope(node)
        return None if scope is None else f"{fixture}_asyncio_{scope}"
    if node.get_closest_marker("asyncio") is not None:
        pytest.fail(
            "tether.testing (tether_registry, tether_no_leaks) under "
            f"pytest-asyncio needs pytest-asyncio >= {_pytest_asyncio.LOWEST}, and "
            f"{_pytest_asyncio.VERSION} is installed: "
            f"pip install -U 'pytest-asyncio>={_pytest_asyncio.LOWEST}'",
            pytrace=False,
        )
    return None


@pytest.fixture(autouse=True)
def _tether_no_leaks(request: pytest.FixtureRequest) -> None:
    check = leak_check(request)
    if check is None:
        return
    logger.addHandler(check.recorder)
    fixture = _in_loop(request, "_tether_raw_tasks")
    if fixture is not None:
        request.getfixturevalue(fixture)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Once every fixture is torn down, fail the test on what it left behind."""
    try:
        yield
    finally:
        check = item.stash.get(check_key, None)
        if check is not None:
            logger.removeHandler(check.recorder)
    if check is not None:
        check.recorder.collect()
        check.open_registries()
        check.fail_if_found()


@pytest.fixture
async def _tether_raw_tasks_anyio(
    request: pytest.FixtureRequest,
) -> AsyncIterator[None]:
    """:func:`watching_tasks`, in the event loop of anyio's pytest plugin."""
    async with watching_tasks(request):
        yield


@pytest.fixture
def tether_registry(request: pytest.FixtureRequest) -> TaskRegistry:
    """An open :class:`~tether.TaskRegistry`, bound for the test, in its event loop:
    under anyio's pytest plugin (on the test's ``anyio_backend``) or under
    pytest-asyncio (strict or auto mode, at the test's loop scope).

    Named ``"tether_registry"``, with ``debug=True`` (handles record their spawn
    site). A failing task that nobody awaits is logged on logger ``"tether"`` with
    its spawn site. At teardown, tasks still running are cancelled and logged, never
    waited for (a test waits for what it needs); with ``tether_no_leaks`` they
    fail the test.

    A test with neither (a sync test) gets an error that says what to add.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       Works under pytest-asyncio (>= 1.1) too, without a wrapper fixture.
    """
    fixture = _in_loop(request, "_tether_registry")
    if fixture is None:
        pytest.fail(
            "tether_registry is opened in the test's event loop, and this test has "
            "none: make it an async test run by anyio's pytest plugin "
            "(@pytest.mark.anyio) or by pytest-asyncio (@pytest.mark.asyncio, or "
            "asyncio_mode = auto)",
            pytrace=False,
        )
    registry: TaskRegistry = request.getfixturevalue(fixture)
    return registry


@pytest.fixture
async def _tether_registry_anyio(
    request: pytest.FixtureRequest,
) -> AsyncIterator[TaskRegistry]:
    """``tether_registry`` in the event loop of anyio's pytest plugin, which runs
    its setup and teardown in one task: the body of an ``async with``."""
    registry = new_registry()
    with anyio.CancelScope() as closing:
        async with registry:
            yield registry
            note_left_running(request, registry)
            # Closing in a cancelled scope cancels what is left (and logs it)
            # instead of draining.
            closing.cancel()
