"""tether.testing under pytest-asyncio: its fixtures, made to run in the test's loop.

Imported by :mod:`tether.testing` only when pytest-asyncio's plugin is active, and
registered as a plugin of its own then, so that pytest-asyncio stays optional.

pytest-asyncio runs a test in the event loop of its *loop scope* (``function`` by
default; ``@pytest.mark.asyncio(loop_scope="module")`` or the ini option
``asyncio_default_test_loop_scope`` widen it), and an async fixture in the loop of
the fixture's own loop scope. A registry opened in another loop than the test's
would be useless to the test, so each fixture that must run in the test's loop
exists once per loop scope, made with ``pytest_asyncio.fixture(loop_scope=...)``,
and :mod:`tether.testing` requests the one of the test's scope. Being made with
``pytest_asyncio.fixture``, they run in strict mode as in auto mode, and a strict
test that asks for ``tether_registry`` needs no wrapper fixture of its own.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from typing import TYPE_CHECKING, Literal

import pytest_asyncio

from ._leak_check import registry_for_test, watching_tasks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pytest

    from ._registry import TaskRegistry

__all__ = ["LOWEST", "SUPPORTED", "VERSION", "loop_scope"]

LoopScope = Literal["function", "class", "module", "package", "session"]
SCOPES: tuple[LoopScope, ...] = ("function", "class", "module", "package", "session")

#: The lowest pytest-asyncio these fixtures work with: 1.1 runs a fixture's setup,
#: its teardown and the test in one context on Python 3.10 too (1.0 does only from
#: 3.11 on), so that the registry the fixture binds is the test's.
LOWEST = "1.1"
VERSION = version("pytest-asyncio")
SUPPORTED = tuple(map(int, re.findall(r"\d+", VERSION)[:2])) >= (1, 1)

#: Where pytest-asyncio lives: a task running its code is its own, not a leak.
_RUNNER = os.path.join(os.path.dirname(pytest_asyncio.__file__), "")


def loop_scope(item: pytest.Function) -> str | None:
    """The loop scope of a test that pytest-asyncio runs, or None for any other.

    As pytest-asyncio decides it: the ``loop_scope`` of the closest ``asyncio``
    marker (which auto mode adds to every async test), else the ini option
    ``asyncio_default_test_loop_scope``."""
    if not pytest_asyncio.is_async_test(item):
        return None
    marker = item.get_closest_marker("asyncio")
    scope: object = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        scope = item.config.getini("asyncio_default_test_loop_scope") or "function"
    return str(scope)


def _registry_fixture(scope: LoopScope) -> object:
    async def registry(request: pytest.FixtureRequest) -> AsyncIterator[TaskRegistry]:
        async with registry_for_test(request) as opened:
            yield opened

    registry.__name__ = registry.__qualname__ = f"_tether_registry_asyncio_{scope}"
    return pytest_asyncio.fixture(registry, loop_scope=scope, name=registry.__name__)


def _raw_tasks_fixture(scope: LoopScope) -> object:
    async def raw_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
        async with watching_tasks(request, _RUNNER):
            yield

    raw_tasks.__name__ = raw_tasks.__qualname__ = f"_tether_raw_tasks_asyncio_{scope}"
    return pytest_asyncio.fixture(raw_tasks, loop_scope=scope, name=raw_tasks.__name__)


# One fixture per loop scope (each its own function: pytest_asyncio.fixture marks
# the function it is given with its loop scope).
if SUPPORTED:
    for _scope in SCOPES:
        globals()[f"_tether_registry_asyncio_{_scope}"] = _registry_fixture(_scope)
        globals()[f"_tether_raw_tasks_asyncio_{_scope}"] = _raw_tasks_fixture(_scope)
