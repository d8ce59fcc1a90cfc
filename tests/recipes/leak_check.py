"""tether.testing: a registry per test, and the leak check (docs/testing.md).

Not collected here (no test_ prefix): tests/test_testing_plugin.py runs it in a
pytester session of its own, where ``test_leaks_a_task`` is meant to error.
"""

from __future__ import annotations

import anyio
import pytest

import tether

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def send_welcome(address: str) -> str:
    await anyio.lowlevel.checkpoint()
    return f"sent to {address}"


async def heartbeat() -> None:
    await anyio.sleep_forever()


@pytest.mark.tether_no_leaks
async def test_clean(tether_registry: tether.TaskRegistry) -> None:
    handle = tether.spawn(send_welcome, "ada@x.org")  # into tether_registry
    assert await handle == "sent to ada@x.org"


@pytest.mark.tether_no_leaks(allow=["heartbeat*"])
async def test_allowed(tether_registry: tether.TaskRegistry) -> None:
    tether.spawn(heartbeat, name="heartbeat main")  # meant to outlive the test


@pytest.mark.tether_no_leaks
async def test_leaks_a_task(tether_registry: tether.TaskRegistry) -> None:
    tether.spawn(heartbeat)  # nobody waits for it, nobody allowed it
