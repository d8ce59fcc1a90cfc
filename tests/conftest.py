"""Every async test runs on asyncio, asyncio with uvloop, and trio.

The suite can fail: a test fails if tether logged an ERROR that the test did not
assert (read through ``helpers.tether_records``), so that a failing ``assert``
inside a task of a ``log``-mode registry fails its test; every record tether
writes must carry the ``tether_registry`` and ``tether_task`` fields; and the
project's own leak check (``tether_no_leaks = true`` in ``pyproject.toml``) fails
a test that leaves a task running. A test that provokes ERROR records and asserts
them some other way (in a subprocess, through ``caplog.text``) says so with
``@pytest.mark.tether_errors_asserted``. pytest-timeout bounds every test.

Tests that assert durations are marked ``mock_clock``: their trio case runs on
trio's mock clock, which jumps to the next deadline as soon as every task is
blocked, so a duration is asserted exactly and costs no real time. asyncio has no
virtual clock; there such a test asserts the order of events only. A test that
only makes sense on the mock clock also narrows the backends to trio::

    @pytest.mark.mock_clock
    @pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from trio.testing import MockClock

if TYPE_CHECKING:
    from collections.abc import Iterator

BACKENDS = ["asyncio", "uvloop", "trio"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_clock: run the trio case on trio.testing.MockClock(autojump_threshold=0)",
    )
    config.addinivalue_line(
        "markers",
        "tether_errors_asserted: the test asserts the ERROR records of logger "
        "'tether' it provokes by other means than helpers.tether_records",
    )


class _TetherLog(logging.Handler):
    """Every record of logger ``"tether"`` during one test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self, item: pytest.Item) -> list[str]:
        """What the records of the phase that just ended say is wrong; forgets
        them."""
        records, self.records = self.records, []
        found = [
            f"a {r.levelname} record without the extra fields tether_registry and "
            f"tether_task: {r.getMessage()!r}"
            for r in records
            if not ("tether_registry" in r.__dict__ and "tether_task" in r.__dict__)
        ]
        if item.get_closest_marker("tether_errors_asserted") is None:
            found += [
                f"an unasserted {r.levelname} record: {r.getMessage()}"
                + ("" if r.exc_text is None else f"\n{r.exc_text}")
                for r in records
                if r.levelno >= logging.ERROR
                and not getattr(r, "tether_asserted", False)
            ]
        return found


_log_key = pytest.StashKey[_TetherLog]()
_tether_logger = logging.getLogger("tether")


def _check(item: pytest.Item, phase: str) -> None:
    log = item.stash.get(_log_key, None)
    problems = [] if log is None else log.problems(item)
    if problems:
        pytest.fail(
            f"tether logged, during the test's {phase}:\n  "
            + "\n  ".join(problems)
            + "\nAssert the records the test provokes with "
            "helpers.tether_records(caplog), or fix what fails.",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    log = item.stash[_log_key] = _TetherLog()
    _tether_logger.addHandler(log)
    yield
    _check(item, "setup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        yield
    except BaseException:
        # The test failed already: its own failure says enough (the records are
        # in its captured log).
        log = item.stash.get(_log_key, None)
        if log is not None:
            log.records.clear()
        raise
    _check(item, "call")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    try:
        yield
    finally:
        log = item.stash.get(_log_key, None)
        if log is not None:
            _tether_logger.removeHandler(log)
    _check(item, "teardown")


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
