# distributed leaves many parameters unannotated: pyright sees them as Unknown.
# pyright: reportUnknownMemberType=false, reportUnknownArgumentType=false
# pyright: reportUnknownVariableType=false
"""The Dask hand-off recipe, run against a ``LocalCluster`` started here: typed results
back, at most ``limit`` futures in flight, a remote failure raised bare, and a
cancelled caller's futures cancelled.

Each test gets its own small cluster (one worker with four threads, no processes,
the in-process transport; its HTTP server on a free loopback port), so no call of
one test can hold a worker thread in the next; starting one takes a fraction of a
second. The client runs its own event loop thread, beside the test's.
The remote functions below block on a ``threading.Event`` so that a test knows
what is in flight; they live in this module, which the worker (in this process)
imports by name.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.to_thread
import pytest

import tether
from recipes.dask_handoff import (
    main,
    on_dask,
    simulate,
    simulate_all,
    simulate_batch,
)
from tether import Status

if TYPE_CHECKING:
    from collections.abc import Iterator

    from distributed import Client, Future

pytestmark = pytest.mark.anyio

GUARD = 30  # seconds: a guard against a hang, never a timing assertion
GATE = threading.Event()
STARTED = threading.Semaphore(0)
ENDED = threading.Semaphore(0)
RUNNING = [0, 0]  # running now, most at once
LOCK = threading.Lock()


def gated_square(n: int) -> int:
    """Runs on a worker: fails at once for 7; else counts itself running, waits for
    the gate and squares."""
    if n == 7:
        raise ValueError("seven is unlucky")
    with LOCK:
        RUNNING[0] += 1
        RUNNING[1] = max(RUNNING)
    STARTED.release()
    try:
        if not GATE.wait(GUARD):
            raise TimeoutError("the test never opened the gate")
        return n * n
    finally:
        with LOCK:
            RUNNING[0] -= 1
        ENDED.release()


@pytest.fixture
def client() -> Iterator[Client]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=4,
            processes=False,
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(autouse=True)
def gate(client: Client) -> Iterator[None]:
    """Every test starts with the gate closed and nothing counted, and ends with it
    open, so that no worker thread stays blocked when its cluster closes."""
    global STARTED, ENDED
    GATE.clear()
    STARTED, ENDED = threading.Semaphore(0), threading.Semaphore(0)  # pyright: ignore[reportConstantRedefinition]
    RUNNING[:] = [0, 0]
    yield
    GATE.set()


@pytest.fixture
def submitted(client: Client, monkeypatch: pytest.MonkeyPatch) -> list[Future[Any]]:
    """Every future the test submits, kept (so its state can be read at the end)."""
    futures: list[Future[Any]] = []
    submit = client.submit

    def recording(*args: Any, **kwargs: Any) -> Future[Any]:
        futures.append(submit(*args, **kwargs))
        return futures[-1]

    monkeypatch.setattr(client, "submit", recording)
    return futures


async def started(count: int) -> None:
    """Wait until ``count`` more remote calls have started."""
    for _ in range(count):
        assert await anyio.to_thread.run_sync(STARTED.acquire, True, GUARD)


async def ended(count: int) -> None:
    for _ in range(count):
        assert await anyio.to_thread.run_sync(ENDED.acquire, True, GUARD)


def scheduler_keys(client: Client) -> set[str]:
    """The keys of the tasks the scheduler knows now."""

    def keys(dask_scheduler: Any) -> set[str]:  # distributed.Scheduler
        return set(dask_scheduler.tasks)

    # run_on_scheduler returns a coroutine only on an asynchronous client.
    found = cast("set[str]", client.run_on_scheduler(keys))
    return found


async def test_amap_brings_every_typed_result_back(client: Client) -> None:
    means = await simulate_all(client, range(50), limit=4)
    assert means == {seed: simulate(seed) for seed in range(50)}


async def test_run_all_brings_the_results_back_in_input_order(client: Client) -> None:
    seeds = [5, 3, 8, 1]
    assert await simulate_batch(client, seeds, limit=2) == tuple(map(simulate, seeds))


async def test_at_most_limit_futures_are_on_the_cluster(client: Client) -> None:
    squares: dict[int, int] = {}

    async def consume() -> None:
        remote = on_dask(client, gated_square)
        async with tether.amap(
            remote, (n for n in range(20) if n != 7), limit=3
        ) as done:
            async for n, square in done:
                squares[n] = square

    async with tether.TaskRegistry(name="test", shutdown_timeout=GUARD) as tasks:
        tasks.spawn(consume)
        await started(3)
        # The worker has four threads, the input twenty items: amap holds the rest.
        assert len(client.futures) == 3
        assert scheduler_keys(client) >= set(client.futures)
        GATE.set()
    assert squares == {n: n * n for n in range(20) if n != 7}
    assert RUNNING[1] <= 3


async def test_a_remote_failure_is_raised_bare_and_cancels_the_rest(
    client: Client, submitted: list[Future[Any]]
) -> None:
    """7 fails at once while the calls beside it wait for the gate: amap raises the
    ValueError bare and cancels the futures still in flight."""

    async def consume() -> None:
        items = [7, *range(7), *range(8, 20)]
        async with tether.amap(on_dask(client, gated_square), items, limit=3) as done:
            async for _ in done:
                pass

    with pytest.raises(ValueError, match="seven is unlucky"):
        await consume()
    statuses = sorted(str(future.status) for future in submitted)  # any start order
    assert statuses == ["cancelled"] * (len(statuses) - 1) + ["error"]
    assert len(statuses) < 20  # the rest of the input was never read


async def test_a_cancelled_caller_cancels_its_futures(
    client: Client, submitted: list[Future[Any]]
) -> None:
    """The caller ends CANCELLED at once, while the remote calls it started are
    still blocked; their futures are cancelled and the scheduler forgets them; the
    calls already running end on the worker, and nothing new starts."""

    async def consume() -> None:
        async with tether.amap(
            on_dask(client, gated_square), range(20), limit=3
        ) as done:
            async for _ in done:
                pass

    async with tether.TaskRegistry(name="test", shutdown_timeout=GUARD) as tasks:
        handle = tasks.spawn(consume)
        await started(3)
        handle.cancel()
        await handle.wait()
        assert handle.status is Status.CANCELLED
        assert not GATE.is_set()  # the caller did not wait for the remote work
        assert [future.status for future in submitted] == ["cancelled"] * 3
    GATE.set()
    await ended(3)
    # The cancel reaches the scheduler on Dask's batched stream, which has nothing
    # to wait for: poll its state, with a guard.
    keys = {future.key for future in submitted}
    with anyio.fail_after(GUARD):
        while keys & scheduler_keys(client):  # noqa: ASYNC110
            await anyio.sleep(0.01)
    assert not STARTED.acquire(blocking=False)  # nothing else was started


def test_the_recipe_runs_as_a_program(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    assert (
        capsys.readouterr().out == f"200 walks, the first ends near {simulate(0):.2f}\n"
    )
