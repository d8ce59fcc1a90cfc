"""``tether demo``: eager spawn versus deferred run_all, and the GC hazard.

Sync tests: the demo runs its own asyncio event loop, as it does from a shell.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

from tether._cli import main

if TYPE_CHECKING:
    import pytest

_LEFT = 44  # the demo's column width


def columns(out: str, header: str) -> tuple[list[str], list[str]]:
    """The left and right columns of the two-column table headed by ``header``,
    with the timeline's leading step numbers removed."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if header in line) + 2
    left: list[str] = []
    right: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        for column, text in ((left, line[2 : 2 + _LEFT]), (right, line[4 + _LEFT :])):
            text = re.sub(r"^\s*\d+\.\d\s+", "", text).strip()
            if text:
                column.append(text)
    return left, right


def test_demo_shows_eager_versus_deferred_and_the_gc_hazard(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out

    eager, deferred = columns(out, "eager: tasks.spawn")
    # Spawned jobs start while the creator does other work, before it awaits them.
    assert eager.index("A starts") < eager.index("creator: await A, await B")
    assert eager.index("B starts") < eager.index("creator: await A, await B")
    # Gathered coroutines start only at the gather point.
    assert deferred.index("creator: await run_all(...)") < deferred.index("A starts")
    assert deferred.index("creator: await run_all(...)") < deferred.index("B starts")

    raw, registry = columns(out, "raw asyncio.create_task")
    assert "task DESTROYED mid-flight by the collector" in raw
    assert "loop: Task was destroyed but it is pending!" in raw
    assert "task finished: got 'hello'" in registry
    assert not any("DESTROYED" in line or "destroyed" in line for line in registry)


def test_python_dash_m_tether_demo_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether", "demo"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr
    assert "task finished: got 'hello'" in done.stdout
    assert "Traceback" not in done.stderr


def test_commands_other_than_scan_never_import_the_scanner() -> None:
    probe = (
        "import sys; from tether._cli import _build_parser; "
        "_build_parser('demo').parse_args(['demo']); "
        "print('tether._cli._scan' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
