"""What ``import tether`` loads, and that what it leaves for later loads when needed.

``import tether`` defers ``logging`` and ``anyio.lowlevel`` to their first use (issue
#25: the import goal of 20 ms after ``import anyio``). The code reads
``anyio.lowlevel.checkpoint`` as an attribute of ``anyio``, so it must work in a fresh
interpreter that never imported ``anyio.lowlevel`` itself: the rest of this suite
imports it, and would hide a missing import.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

FIRST_USE = textwrap.dedent(
    """
    import sys

    import anyio

    before = set(sys.modules)  # anyio itself imports logging up to 4.15
    import tether

    left_for_later = sorted({"logging"} & (set(sys.modules) - before))
    assert not left_for_later, left_for_later

    async def work() -> int:
        await anyio.sleep(0)
        return 1

    async def main() -> None:
        # An empty gather is the first thing tether does in this process.
        assert await tether.run_all() == ()
        async with tether.TaskRegistry() as tasks:
            handle = tasks.spawn(work)
            assert await handle == 1
        registry = tether.TaskRegistry()
        await registry.open()
        registry.spawn(work)
        await registry.aclose()
        assert await tether.settle_all(tether.spawn(work)) == (1,)

    anyio.run(main, backend=sys.argv[1])
    print("ok")
    """
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_first_use_in_a_fresh_interpreter_loads_what_it_needs(backend: str) -> None:
    """A fresh interpreter: ``import tether`` leaves ``logging`` for later, and the
    first gather, registry, ``aclose()`` and ``spawn`` still find ``anyio.lowlevel``
    (issue #25: the import deferred it)."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", FIRST_USE, backend],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_the_lazy_logger_writes_through_to_the_tether_logger() -> None:
    """The logger made at first use is ``logging.getLogger("tether")`` for writes
    too: the demo's ``logger.propagate = False`` once set only the stand-in, and its
    record reached the root handler twice (issue #25: the lazy import)."""
    import logging

    from tether._log import logger

    real = logging.getLogger("tether")
    try:
        logger.propagate = False
        assert (real.propagate, logger.propagate) == (False, False)
    finally:
        real.propagate = True
    assert (real.propagate, logger.propagate) == (True, True)
