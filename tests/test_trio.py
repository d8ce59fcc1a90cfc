"""tether for trio users: what a trio programmer expects of a nursery holds for a
registry and a gather on trio (issue #26). Most tests here are trio-only by nature
(KeyboardInterrupt delivery, trio's deadlines, trio's task tree): each says so.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = Path(__file__).with_name("interrupt_trio.py")


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.parametrize("how", ["registry", "run_all", "service", "nursery"])
def test_ctrl_c_interrupts_a_busy_tether_task_on_trio(how: str) -> None:
    """Ctrl+C reaches a tether task that never checkpoints, as it reaches a nursery
    task, and the block re-raises it bare (#26 item 1: registry tasks and gather
    children were KeyboardInterrupt-protected system tasks, so a busy loop kept
    running through three SIGINTs). trio only: asyncio delivers Ctrl+C by
    cancelling the main task, which a busy task never lets run."""
    process = subprocess.Popen(
        [sys.executable, str(PROGRAM), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "busy\n"
        process.send_signal(signal.SIGINT)
        # A safety net, not a timing assertion: the program ends at once, or never.
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{how}: Ctrl+C did not stop a busy tether task")
    assert (out, process.returncode) == ("interrupted: KeyboardInterrupt\n", 0), err
