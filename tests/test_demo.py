"""``tether demo``: create_task or gather, and the two hazards of a raw task.

Sync tests: the demo runs its own asyncio event loop, as it does from a shell.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from typing import TYPE_CHECKING

from tether._cli import main

if TYPE_CHECKING:
    import pytest

_LEFT = 37  # the demo's column width


class _Claimed(logging.Handler):
    """The demo's own ERROR records, which it shows: asserted, so claimed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.tether_asserted = True
        self.messages.append(record.getMessage())


def demo(capsys: pytest.CaptureFixture[str]) -> str:
    claimed = _Claimed()
    logger = logging.getLogger("tether")
    logger.addHandler(claimed)
    try:
        assert main(["demo"]) == 0
    finally:
        logger.removeHandler(claimed)
    # The unobserved failure it shows, and nothing else.
    assert claimed.messages == ["Task 'fails' of TaskRegistry 'demo' failed"]
    return capsys.readouterr().out


def columns(out: str, title: str) -> tuple[list[str], list[str]]:
    """The left and right columns of the show titled ``title`` (a title, a blank
    line, the column headings, a blank line, the rows), with the timeline's step
    numbers removed and wrapped lines joined."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 4
    left: list[str] = []
    right: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        for column, text in ((left, line[2 : 2 + _LEFT]), (right, line[4 + _LEFT :])):
            if text.startswith("  ") and text.strip() and column:
                column[-1] += " " + text.strip()  # a wrapped line goes on
                continue
            text = re.sub(r"^\s*\d+\s+", "", text).strip()
            if text:
                column.append(text)
    return left, right


def test_the_demo_prints_the_same_lines_every_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert demo(capsys) == demo(capsys)


def test_spawned_jobs_run_once_the_creator_awaits_and_gathered_ones_at_the_gather(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = demo(capsys)
    assert "create_task -> tasks.spawn (eager)" in out
    assert "gather -> tether.run_all (deferred)" in out
    eager, deferred = columns(out, "1. create_task or gather?")
    # Nothing runs inside spawn nor during the creator's sync code...
    assert eager[:3] == [
        "spawn A, spawn B: nothing runs",
        "creator: sync code, no await",
        "creator: await other work",
    ]
    # ...and then the jobs run while the creator's other work is suspended.
    assert eager.index("job A starts") < eager.index("creator: other work done")
    assert eager.index("job B ends") < eager.index("creator: await A, await B")
    # Gathered coroutines start only at the gather point.
    gather = deferred.index("creator: await run_all(A, B)")
    assert deferred.index("creator: other work done") < gather
    assert gather < deferred.index("job A starts")
    assert gather < deferred.index("job B starts")
    assert eager[-1] == deferred[-1] == "creator: got ['A', 'B']"


def test_the_gc_hazard_and_the_unobserved_failure_are_shown_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = demo(capsys)
    raw, registry = columns(out, "2. A task whose only reference is dropped")
    assert "task DESTROYED mid-flight" in raw
    assert "loop: Task was destroyed but it is pending!" in raw
    assert "task finished: got 'hello'" in registry
    assert not any("destroyed" in line.lower() for line in registry)

    raw, registry = columns(out, "3. A task that fails while nobody awaits it")
    # The raw task's failure surfaces only when the task is collected...
    assert raw.index("creator: goes on, nothing seen") < raw.index(
        "loop: Task exception was never retrieved"
    )
    # ...the registry's as it happens, before the creator goes on.
    assert registry.index("log: Task 'fails' of TaskRegistry 'demo' failed") < (
        registry.index("creator: goes on")
    )


def test_the_demo_ends_with_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    last = demo(capsys).splitlines()[-1]
    assert last.startswith("The rule:")
    assert "spawn" in last
    assert "run_all" in last


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
    assert done.stderr == ""


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
