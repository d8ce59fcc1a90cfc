"""tether.cancel_on_signal: a handle or a registry cancelled on a signal, the
previous handlers put back after the first signal and when the block ends (#21
item 2's helper).

In this process the tests raise SIGUSR1, never SIGINT: a SIGINT that found no
handler of ours would stop the whole pytest run. The real Ctrl+C, a SIGINT sent to
another process, is tested with tests/cancel_on_signal.py and with the recipe's
CLI (tests/test_recipes_check_sites.py), on every backend.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import tether
from tether import RegistryState, Status, TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SIGNAL_PROGRAM = Path(__file__).with_name("cancel_on_signal.py")


@pytest.fixture
def recorded() -> Iterator[list[int]]:
    """SIGUSR1 handled by a handler that records it, for the test's length."""
    seen: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGUSR1, record)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.anyio
async def test_a_signal_cancels_the_handle_and_puts_the_old_handler_back(
    recorded: list[int],
) -> None:
    before = signal.getsignal(signal.SIGUSR1)
    async with TaskRegistry(name="cli") as tasks:
        run = tasks.spawn(anyio.sleep_forever, name="run")
        with tether.cancel_on_signal(run, signal.SIGUSR1) as cancelling:
            await anyio.wait_all_tasks_blocked()
            signal.raise_signal(signal.SIGUSR1)
            # The first signal was ours; the handler before it is back at once.
            assert signal.getsignal(signal.SIGUSR1) is before
            with pytest.raises(tether.TaskCancelled):
                await run
            assert cancelling.received is signal.SIGUSR1
            signal.raise_signal(signal.SIGUSR1)  # a second one: the old handler's
        assert run.status is Status.CANCELLED
    assert recorded == [signal.SIGUSR1]


@pytest.mark.anyio
async def test_a_registry_target_has_every_task_cancelled_and_stays_open(
    recorded: list[int],
) -> None:
    async with TaskRegistry(name="cli") as tasks:
        first = tasks.spawn(anyio.sleep_forever)
        second = tasks.spawn(anyio.sleep_forever)
        with tether.cancel_on_signal(tasks, signal.SIGUSR1):
            await anyio.wait_all_tasks_blocked()
            signal.raise_signal(signal.SIGUSR1)
            await first.wait()
            await second.wait()
        assert (first.status, second.status) == (Status.CANCELLED, Status.CANCELLED)
        assert tasks.state is RegistryState.OPEN
        more = tasks.spawn(anyio.sleep, 0)  # it still takes work
        await more
        assert more.status is Status.FINISHED
    assert recorded == []


def test_leaving_the_block_puts_every_handler_back() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    tasks = TaskRegistry()
    with tether.cancel_on_signal(tasks) as cancelling:  # SIGINT and SIGTERM
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before
    assert cancelling.received is None


def test_a_handler_installed_inside_the_block_is_left_alone(
    recorded: list[int],
) -> None:
    def other(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("never raised")  # pragma: no cover

    with tether.cancel_on_signal(TaskRegistry(), signal.SIGUSR1):
        signal.signal(signal.SIGUSR1, other)
    assert signal.getsignal(signal.SIGUSR1) is other


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((object(),), "takes a tether handle or a TaskRegistry to cancel, got object"),
        ((TaskRegistry(), "SIGINT"), r"signals must be signal.Signals, got 'SIGINT'"),
        ((TaskRegistry(), 2), r"signals must be signal.Signals, got 2"),
    ],
)
def test_a_bad_argument_is_a_type_error_that_shows_the_fix(
    args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        tether.cancel_on_signal(*args)


@pytest.mark.anyio
async def test_entering_outside_the_main_thread_says_where_it_works() -> None:
    def in_a_thread() -> None:
        with tether.cancel_on_signal(TaskRegistry(), signal.SIGUSR1):
            raise AssertionError("entered")  # pragma: no cover

    with pytest.raises(RuntimeError, match="only in the main thread"):
        await anyio.to_thread.run_sync(in_a_thread)


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_real_ctrl_c_cancels_the_task_at_once(backend: str) -> None:
    """A real SIGINT, to a program asleep in its event loop, on every backend:
    it prints ``cancelled`` and exits 0, where it would otherwise sleep 60 s."""
    process = subprocess.Popen(
        [sys.executable, str(SIGNAL_PROGRAM), backend, "helper"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        # A hang guard, not a timing assertion: the task sleeps 60 s otherwise.
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{backend}: Ctrl+C did not cancel the task")
    assert (out, err, process.returncode) == ("cancelled SIGINT\n", "", 0)
