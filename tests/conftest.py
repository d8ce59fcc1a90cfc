"""Every async test runs on asyncio, asyncio with uvloop, and trio.

Tests that assert durations are marked ``mock_clock``: their trio case runs on
trio's mock clock, which jumps to the next deadline as soon as every task is
blocked, so a duration is asserted exactly and costs no real time. asyncio has no
virtual clock; there such a test asserts the order of events only. A test that
only makes sense on the mock clock also narrows the backends to trio::

    @pytest.mark.mock_clock
    @pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
"""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

BACKENDS = ["asyncio", "uvloop", "trio"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_clock: run the trio case on trio.testing.MockClock(autojump_threshold=0)",
    )


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The backend and its options for anyio's pytest plugin, by name."""
    name: str = request.param
    if name == "trio":
        if request.node.get_closest_marker("mock_clock") is not None:
            return "trio", {"clock": MockClock(autojump_threshold=0)}
        return "trio", {}
    return "asyncio", {"use_uvloop": name == "uvloop"}


@pytest.fixture
def backend_name(anyio_backend: tuple[str, dict[str, Any]]) -> str:
    """``"asyncio"``, ``"uvloop"`` or ``"trio"``: the backend this test runs on."""
    name, options = anyio_backend
    if name == "asyncio" and options.get("use_uvloop"):
        return "uvloop"
    return name
