"""``tether scan``: every rule and non-rule, the output formats, noqa and exit codes.

The scanned sources are written into ``tmp_path``: fixture files under ``tests/`` would
be type-checked. In a source, ``# expect TET001`` marks the line where a finding must
be, and a source without a mark must produce none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tether._cli import main

if TYPE_CHECKING:
    from pathlib import Path

LINE = re.compile(
    r"^(?P<path>.+):(?P<line>\d+):(?P<column>\d+): (?P<code>\w+) (?P<msg>.*)$"
)
NEEDS = (
    "which keeps the task and logs its failure (needs `import tether`; bind a "
    "tether.TaskRegistry around it to drain it at shutdown)"
)
DISCARDED = (
    "dangling task: the result of {}() is discarded, so the task may be "
    "garbage-collected mid-flight; use tether.spawn({}), " + NEEDS
)
GATHERED = (
    "eager tasks made only to be gathered: asyncio.gather() wraps coroutines in tasks "
    "itself, and no await comes between creating these tasks and gathering them; "
    "use `await tether.run_all({})`, which cancels the others on the first failure, "
    "where gather leaves them running"
)


def write(directory: Path, name: str, source: str | bytes) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``tether scan ARGV`` and return its exit code, stdout and stderr."""
    code = main(["scan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def reports(out: str) -> list[tuple[str, int, int, str, str]]:
    matches = [LINE.match(line) for line in out.splitlines()]
    assert all(matches), out
    return [
        (m["path"], int(m["line"]), int(m["column"]), m["code"], m["msg"])
        for m in matches
        if m is not None
    ]


def check_marks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, *, flagged: bool
) -> None:
    """Scan ``source`` and compare its findings with its ``# expect CODE`` marks,
    which a ``flagged`` source must have and any other must not."""
    path = write(tmp_path, "mod.py", source)
    expected = [
        (number, mark)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for mark in re.findall(r"# expect (TET\d+)", line)
    ]
    assert bool(expected) is flagged, "a flagging test needs an `# expect` mark"
    code, out, _ = scan(capsys, str(path))
    assert [(line, found) for _, line, _, found, _ in reports(out)] == expected
    assert code == (1 if expected else 0)


FLAGGED_TET001 = {
    "asyncio.create_task": """
        import asyncio
        async def f():
            asyncio.create_task(work())  # expect TET001
    """,
    "asyncio.ensure_future": """
        import asyncio
        def f():
            asyncio.ensure_future(work())  # expect TET001
    """,
    "module alias": """
        import asyncio as aio
        async def f():
            aio.create_task(work())  # expect TET001
    """,
    "function alias": """
        from asyncio import create_task as ct
        async def f():
            ct(work())  # expect TET001
    """,
    "imported ensure_future": """
        from asyncio import ensure_future
        async def f():
            ensure_future(work())  # expect TET001
    """,
    "asyncio.tasks module": """
        import asyncio.tasks
        async def f():
            asyncio.tasks.create_task(work())  # expect TET001
    """,
    "get_running_loop().create_task": """
        import asyncio
        async def f():
            asyncio.get_running_loop().create_task(work())  # expect TET001
    """,
    "get_event_loop().create_task, imported": """
        from asyncio import get_event_loop as gel
        def f():
            gel().create_task(work())  # expect TET001
    """,
    "a local from new_event_loop()": """
        import asyncio
        def f():
            ev = asyncio.new_event_loop()
            ev.create_task(work())  # expect TET001
    """,
    "a local from get_running_loop(), used in a nested function": """
        import asyncio
        async def f():
            ev = asyncio.get_running_loop()
            def later():
                ev.create_task(work())  # expect TET001
            return later
    """,
    "named loop": """
        def f(loop):
            loop.create_task(work())  # expect TET001
    """,
    "named _loop": """
        def f(_loop):
            _loop.create_task(work())  # expect TET001
    """,
    "self._loop and self.loop": """
        class C:
            def f(self):
                self._loop.create_task(work())  # expect TET001
                self.loop.create_task(work())  # expect TET001
    """,
    "parameter annotated AbstractEventLoop": """
        import asyncio
        def f(ev: asyncio.AbstractEventLoop, other: "AbstractEventLoop | None"):
            ev.create_task(work())  # expect TET001
            other.create_task(work())  # expect TET001
    """,
    "local annotated AbstractEventLoop": """
        from asyncio import AbstractEventLoop
        def f():
            ev: AbstractEventLoop = make()
            ev.create_task(work())  # expect TET001
    """,
    "attributes holding a loop": """
        import asyncio
        class C:
            _ev: asyncio.AbstractEventLoop
            def __init__(self):
                self._other = asyncio.new_event_loop()
            def f(self):
                self._ev.create_task(work())  # expect TET001
                self._other.create_task(work())  # expect TET001
    """,
    "lambda given to a callback": """
        import asyncio
        def f(loop, future):
            loop.call_soon(lambda: asyncio.create_task(work()))  # expect TET001
            future.add_done_callback(
                callback=lambda _: asyncio.ensure_future(work()),  # expect TET001
            )
    """,
    "local never used again": """
        import asyncio
        async def f():
            task = asyncio.create_task(work())  # expect TET001
            _ = asyncio.create_task(work())  # expect TET001
            if (t := asyncio.create_task(work())):  # expect TET001
                pass
            del task
    """,
    "conditional expression statement": """
        import asyncio
        async def f(flag):
            flag and asyncio.create_task(work())  # expect TET001
    """,
}

NOT_FLAGGED_TET001 = {
    "task group from async with": """
        import asyncio
        async def f():
            async with asyncio.TaskGroup() as tg:
                tg.create_task(work())
            async with asyncio.TaskGroup() as loop:
                loop.create_task(work())
    """,
    "task group parameter": """
        import asyncio
        from asyncio import TaskGroup
        async def f(tg: TaskGroup, loop: "asyncio.TaskGroup"):
            tg.create_task(work())
            loop.create_task(work())
    """,
    "stored in an attribute or a subscript": """
        import asyncio
        class C:
            def f(self, tasks):
                self._task = asyncio.create_task(work())
                tasks["key"] = asyncio.create_task(work())
    """,
    "awaited or returned": """
        import asyncio
        async def f():
            await asyncio.create_task(work())
            return asyncio.create_task(work())
    """,
    "added to a collection": """
        import asyncio
        BACKGROUND = set()
        async def f(tasks):
            tasks.append(asyncio.create_task(work()))
            task = asyncio.create_task(work())
            BACKGROUND.add(task)
            task.add_done_callback(BACKGROUND.discard)
    """,
    "passed to a function": """
        import asyncio
        async def f():
            register(asyncio.ensure_future(work()))
            results = list(map(lambda c: asyncio.create_task(c), coros))
            return results
    """,
    "local read in the next iteration or in a nested function": """
        import asyncio
        async def f():
            task = None
            while True:
                if task is not None:
                    await task
                task = asyncio.create_task(work())
        async def g():
            def cancel():
                kept.cancel()
            kept = asyncio.create_task(work())
            return cancel
    """,
    "global and module-level names": """
        import asyncio
        TASK = asyncio.create_task(work())
        async def f():
            global TASK
            TASK = asyncio.create_task(work())
    """,
    "create_task of something that is not a loop": """
        from mylib import create_task
        async def f(client, tg):
            client.create_task(work())
            tg.create_task(work())
            create_task(work())
    """,
}

FLAGGED_TET002 = {
    "a list of tasks": """
        import asyncio
        async def f():
            tasks = [asyncio.create_task(a()), asyncio.create_task(b())]
            return await asyncio.gather(*tasks)  # expect TET002
    """,
    "a comprehension": """
        import asyncio
        async def f(coros):
            tasks = [asyncio.ensure_future(c) for c in coros[0]]
            log("gathering")
            results = await asyncio.gather(*tasks)  # expect TET002
            for batch in coros:
                tasks = [asyncio.create_task(c) for c in batch]
                await asyncio.gather(*tasks)  # expect TET002
            return results
    """,
    "a loop of appends": """
        import asyncio
        async def f(loop, coros):
            tasks = []
            for coro in coros:
                tasks.append(loop.create_task(coro))
            await asyncio.gather(*tasks, return_exceptions=True)  # expect TET002
    """,
    "tasks made in the gather call": """
        from asyncio import create_task, gather
        async def f(coros):
            await gather(*[create_task(c) for c in coros])  # expect TET002
            await gather(*map(create_task, coros))  # expect TET002
            await gather(create_task(a()), create_task(b()))  # expect TET002
    """,
    "gathered inside try and with": """
        import asyncio
        async def f(coros, lock):
            tasks = [asyncio.create_task(c) for c in coros]
            with lock:
                try:
                    await asyncio.gather(*tasks)  # expect TET002
                except OSError:
                    pass
    """,
    "one name per task": """
        import asyncio
        async def f():
            first = asyncio.create_task(a())
            second = asyncio.create_task(b())
            await asyncio.gather(first, second)  # expect TET002
    """,
    # A name= only labels a task while it runs: made in a comprehension or a list
    # and gathered at once, the tasks are still made for the gather alone.
    "named tasks in a comprehension or a list": """
        import asyncio
        async def f(d):
            tasks = [
                asyncio.create_task(fetch(address), name=f"get-{address}")
                for address in d
            ]
            results = await asyncio.gather(*tasks, return_exceptions=1)  # expect TET002
            await asyncio.gather(*[asyncio.create_task(a(), name="a")])  # expect TET002
            return results
    """,
}

NOT_FLAGGED_TET002 = {
    "asyncio.wait needs tasks": """
        import asyncio
        async def f(coros):
            tasks = [asyncio.create_task(c) for c in coros]
            await asyncio.wait(tasks)
    """,
    "an await in between": """
        import asyncio
        async def f(coros):
            tasks = [asyncio.create_task(c) for c in coros]
            await asyncio.sleep(1)
            await asyncio.gather(*tasks)
            more = []
            for coro in coros:
                more.append(asyncio.create_task(coro))
                await asyncio.sleep(0)
            await asyncio.gather(*more)
    """,
    "tasks used for more than the gather": """
        import asyncio
        async def f(coros):
            tasks = [asyncio.create_task(c) for c in coros]
            tasks[0].add_done_callback(print)
            await asyncio.gather(*tasks)
            futures = [asyncio.ensure_future(c) for c in coros]
            try:
                await asyncio.gather(*futures)
            finally:
                for future in futures:
                    future.cancel()
            contexts = [asyncio.create_task(c, context=ctx) for c in coros]
            await asyncio.gather(*contexts)
    """,
    "tasks named one by one": """
        import asyncio
        async def f():
            first = asyncio.create_task(a(), name="first")
            second = asyncio.create_task(b(), name="second")
            await asyncio.gather(first, second)
            await asyncio.gather(asyncio.create_task(a(), name="a"))
    """,
    "an await in the header of an if around the gather, or a loop": """
        import asyncio
        async def f(coros):
            tasks = [asyncio.create_task(c) for c in coros]
            if await ready():
                await asyncio.gather(*tasks)
            for _ in range(3):
                await asyncio.gather(*tasks)
    """,
    "one task made for more than the gather": """
        import asyncio
        async def f(sem):
            async def first():
                second.cancel()
            one = asyncio.create_task(first())
            second = asyncio.create_task(work())
            await asyncio.gather(one, second)
    """,
    "coroutines gathered": """
        import asyncio
        async def f(coros):
            await asyncio.gather(*coros)
            await asyncio.gather(a(), b())
    """,
}


FLAGGED_NEW = {
    "TET003 a method's task dropped by its callers": """
        import asyncio
        class Client:
            def _schedule_event(self, coro, name):
                wrapped = self._run_event(coro)
                return self.loop.create_task(wrapped, name=name)
            def _kept(self):
                task = asyncio.create_task(work())
                task.add_done_callback(print)
                return task
            def dispatch(self, event):
                self._schedule_event(handler, event)  # expect TET003
                self._kept()  # expect TET003
                handle = self._schedule_event(handler, event)
                return handle
    """,
    "TET003 a module function, async or not": """
        import asyncio
        def start(coro):
            return asyncio.ensure_future(coro)
        async def start_later(coro):
            return asyncio.create_task(coro)
        async def main():
            start(work())  # expect TET003
            await start_later(work())  # expect TET003
    """,
    "TET004 a local only given a done callback": """
        import asyncio
        class Proxy:
            def connect(self):
                task = self.loop.create_task(self._connect())  # expect TET004
                task.add_done_callback(lambda t: self.handle_received())
            def chained(self):
                asyncio.create_task(work()).add_done_callback(print)  # expect TET004
    """,
    "TET005 a discarded run_coroutine_threadsafe future": """
        import asyncio
        from asyncio import run_coroutine_threadsafe as rct
        def worker(loop, queue):
            asyncio.run_coroutine_threadsafe(queue.put(None), loop)  # expect TET005
            _future = rct(queue.put(1), loop)  # expect TET005
    """,
    "TET006 a discarded gather": """
        import asyncio
        async def cleanup(servers):
            tasks = (server.stop() for server in servers)
            asyncio.gather(*tasks)  # expect TET006
            later = asyncio.gather(a(), b())  # expect TET006
    """,
}

NOT_FLAGGED_NEW = {
    "TET003 a returned task that is kept or stored inside": """
        import asyncio
        class Client:
            def _schedule(self, coro):
                return self.loop.create_task(coro)
            def _stored(self, coro):
                task = asyncio.create_task(coro)
                self._tasks.add(task)
                return task
            def _sometimes(self, coro):
                if coro is None:
                    return None
                return asyncio.create_task(coro)
            def run(self, coro, other):
                self._tasks.add(self._schedule(coro))
                self._stored(coro)
                self._sometimes(coro)
                other._schedule(coro)
        def _schedule(coro):
            return asyncio.create_task(coro)
        class Other:
            def go(self, coro):
                self._schedule(coro)
    """,
    "TET004 a done callback and another use": """
        import asyncio
        BACKGROUND = set()
        async def f():
            task = asyncio.create_task(work())
            BACKGROUND.add(task)
            task.add_done_callback(BACKGROUND.discard)
            other = asyncio.create_task(work())
            other.add_done_callback(print)
            await other
    """,
    "TET005 and TET006 kept or awaited": """
        import asyncio
        async def f(loop):
            future = asyncio.run_coroutine_threadsafe(work(), loop)
            future.result()
            await asyncio.gather(a(), b())
            results = asyncio.gather(a(), b())
            return await results
    """,
}


@pytest.mark.parametrize("source", FLAGGED_NEW.values(), ids=FLAGGED_NEW)
def test_new_codes_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    check_marks(tmp_path, capsys, source, flagged=True)


@pytest.mark.parametrize("source", NOT_FLAGGED_NEW.values(), ids=NOT_FLAGGED_NEW)
def test_new_codes_do_not_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    check_marks(tmp_path, capsys, source, flagged=False)


def test_new_codes_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "mod.py",
        """\
        import asyncio
        class Client:
            def _schedule(self, coro):
                return self.loop.create_task(coro, name="event")
            def dispatch(self, coro, loop):
                self._schedule(coro)
                task = asyncio.create_task(work())
                task.add_done_callback(print)
                asyncio.run_coroutine_threadsafe(work(), loop)
                asyncio.gather(a(), b(), return_exceptions=True)
        """,
    )
    code, out, _ = scan(capsys, str(path))
    lost = "so the task may be garbage-collected mid-flight"
    assert [message for *_, message in reports(out)] == [
        "returned task dropped: self._schedule() returns the task "
        "self.loop.create_task() makes at line 4, and the result is discarded here, "
        f"{lost}; in _schedule, use tether.spawn(coro, name='event'), {NEEDS}",
        "task kept only by its done callback: the task asyncio.create_task() makes is "
        f"used only to add a done callback, which does not keep it alive, {lost}; use "
        f"tether.spawn(work()), {NEEDS}, and add the "
        "callback to the handle it returns (Handle.add_done_callback)",
        "discarded future: the result of asyncio.run_coroutine_threadsafe() is "
        f"discarded, {lost} and its failure is lost without a trace; use "
        "spawn_threadsafe(work()) on a tether.TaskRegistry, which keeps the task and "
        "reports its failure",
        "discarded gather: the result of asyncio.gather() is discarded, so nothing "
        "waits for its tasks, they may be garbage-collected mid-flight, and a failure "
        "is reported late or never; to wait for them, use "
        "`await tether.settle_all(a(), b())`, which returns each result or the "
        "exception it raised; to run them in the background, tether.spawn each one",
    ]
    assert code == 1


@pytest.mark.parametrize(
    ("gather", "hint"),
    [
        (
            "asyncio.gather(*tasks)",
            "use `await tether.run_all(...)`, which cancels the others on the first "
            "failure, where gather leaves them running",
        ),
        (
            "asyncio.gather(*tasks, return_exceptions=True)",
            "use `await tether.settle_all(...)`, which returns each result or the "
            "exception it raised",
        ),
        (
            "asyncio.gather(*tasks, return_exceptions=flag)",
            "use `await tether.run_all(...)`, which cancels the others on the first "
            "failure, where gather leaves them running, or "
            "`await tether.settle_all(...)` where return_exceptions is true",
        ),
        (
            "asyncio.gather(*map(asyncio.create_task, coros))",
            "use `await tether.run_all(*coros)`, which cancels the others on the "
            "first failure, where gather leaves them running",
        ),
        (
            "asyncio.gather(asyncio.create_task(a()), asyncio.create_task(b(x)))",
            "use `await tether.run_all(a(), b(x))`, which cancels the others on the "
            "first failure, where gather leaves them running",
        ),
    ],
)
def test_gather_hints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gather: str, hint: str
) -> None:
    source = (
        "import asyncio\n"
        "async def f(coros, flag):\n"
        "    tasks = [asyncio.create_task(c) for c in coros]\n"
        f"    await {gather}\n"
    )
    _, out, _ = scan(capsys, str(write(tmp_path, "mod.py", source)))
    [(*_, message)] = reports(out)
    assert message.endswith("; " + hint)


@pytest.mark.parametrize(
    ("call", "hint"),
    [
        ("asyncio.create_task(work())", "tether.spawn(work())"),
        ('asyncio.create_task(work(), name="w")', "tether.spawn(work(), name='w')"),
        ("asyncio.create_task(work(), name=label)", "tether.spawn(work(), name=label)"),
        (
            "asyncio.create_task(a_long_function_name(with_args, and_more, args))",
            "tether.spawn(...)",
        ),
        ("asyncio.create_task(*coros)", "tether.spawn(...)"),
        ("asyncio.ensure_future(coro=work())", "tether.spawn(...)"),
    ],
)
def test_spawn_hints_never_invent_a_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], call: str, hint: str
) -> None:
    source = f"import asyncio\nasync def f(coros, label):\n    {call}\n"
    _, out, _ = scan(capsys, str(write(tmp_path, "mod.py", source)))
    [(*_, message)] = reports(out)
    assert message.endswith(f"; use {hint}, {NEEDS}")


@pytest.mark.parametrize("source", FLAGGED_TET001.values(), ids=FLAGGED_TET001)
def test_tet001_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    check_marks(tmp_path, capsys, source, flagged=True)


@pytest.mark.parametrize("source", NOT_FLAGGED_TET001.values(), ids=NOT_FLAGGED_TET001)
def test_tet001_does_not_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    check_marks(tmp_path, capsys, source, flagged=False)


@pytest.mark.parametrize("source", FLAGGED_TET002.values(), ids=FLAGGED_TET002)
def test_tet002_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    check_marks(tmp_path, capsys, source, flagged=True)


@pytest.mark.parametrize("source", NOT_FLAGGED_TET002.values(), ids=NOT_FLAGGED_TET002)
def test_tet002_does_not_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    check_marks(tmp_path, capsys, source, flagged=False)


def test_messages_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "mod.py",
        """\
        import asyncio
        async def f(coros):
            asyncio.create_task(work(1))
            task = asyncio.get_running_loop().create_task(coros[0])
            loop.call_soon(lambda: asyncio.ensure_future(work()))
            tasks = [asyncio.create_task(c) for c in coros]
            await asyncio.gather(*tasks)
            s = "é"; asyncio.ensure_future(a_long_function_name(with_args, and_more))
        """,
    )
    code, out, err = scan(capsys, str(path))
    hint = "so the task may be garbage-collected mid-flight; use tether.spawn"
    registry = NEEDS
    assert out.splitlines() == [
        f"{path}:3:5: TET001 " + DISCARDED.format("asyncio.create_task", "work(1)"),
        f"{path}:4:12: TET001 dangling task: the result of "
        "asyncio.get_running_loop().create_task() is stored in 'task', which is never "
        f"used again, {hint}(coros[0]), {registry}",
        f"{path}:5:28: TET001 dangling task: the result of asyncio.ensure_future() is "
        "returned by a lambda callback, whose return value is discarded, "
        f"{hint}(work()), {registry}",
        f"{path}:7:11: TET002 " + GATHERED.format("..."),
        # The column counts characters, not the two bytes of "é"; a long argument
        # is not repeated in the hint, nor replaced by a made-up name.
        f"{path}:8:14: TET001 " + DISCARDED.format("asyncio.ensure_future", "..."),
    ]
    assert err == "5 findings in 1 file (1 file scanned)\n"
    assert code == 1


@pytest.mark.parametrize(
    ("comment", "flagged"),
    [
        ("# noqa: TET001", False),
        ("# noqa", False),
        ("#noqa:TET002,TET001", False),
        ("# NOQA: E501 TET001 (a reason)", False),
        ("# noqa: E501", True),
        ("# noqa: TET002", True),
        ("# a comment", True),
    ],
)
def test_noqa(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], comment: str, flagged: bool
) -> None:
    source = f"import asyncio\nasyncio.ensure_future(work())  {comment}\n"
    code, out, err = scan(capsys, str(write(tmp_path, "mod.py", source)))
    assert [found[3] for found in reports(out)] == (["TET001"] if flagged else [])
    assert code == (1 if flagged else 0)
    assert err == ("1 finding in 1 file" if flagged else "No findings") + (
        " (1 file scanned)\n"
    )


BOTH = """
    import asyncio
    async def f(coros):
        asyncio.create_task(work())
        await asyncio.gather(*[asyncio.create_task(c) for c in coros])
"""
EVERY = (
    BOTH
    + """\
        asyncio.create_task(work()).add_done_callback(print)
        asyncio.run_coroutine_threadsafe(work(), loop)
        asyncio.gather(a(), b())
    def _start(coro):
        return asyncio.create_task(coro)
    def go():
        _start(work())
"""
)


@pytest.mark.parametrize(
    ("options", "codes"),
    [
        ([], ["TET001", "TET002", "TET004", "TET005", "TET006", "TET003"]),
        (["--select", "TET002"], ["TET002"]),
        (["--select", "tet001,TET002"], ["TET001", "TET002"]),
        (
            ["--select", "TET"],
            ["TET001", "TET002", "TET004", "TET005", "TET006", "TET003"],
        ),
        (["--select", "TET001", "--select", "TET002"], ["TET001", "TET002"]),
        (["--ignore", "TET001"], ["TET002", "TET004", "TET005", "TET006", "TET003"]),
        (["--select", "TET", "--ignore", "TET00"], []),
        (["--select", "TET003,TET004"], ["TET004", "TET003"]),
        (["--select", "TET005", "--select", "TET006"], ["TET005", "TET006"]),
        (["--ignore", "TET001,TET002"], ["TET004", "TET005", "TET006", "TET003"]),
    ],
)
def test_select_and_ignore(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    codes: list[str],
) -> None:
    code, out, _ = scan(capsys, str(write(tmp_path, "mod.py", EVERY)), *options)
    assert [found[3] for found in reports(out)] == codes
    assert code == (1 if codes else 0)


def test_unknown_code_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", str(tmp_path), "--select", "TET9"])
    assert exit_info.value.code == 2
    assert (
        "unknown code 'TET9': the codes are TET001, TET002, TET003, TET004, TET005, "
        "TET006" in capsys.readouterr().err
    )


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "a.py", BOTH)
    bad = write(tmp_path, "b.py", "x = (\n")
    missing = tmp_path / "missing.py"
    code, out, err = scan(capsys, "--format", "json", str(tmp_path), str(missing))
    assert json.loads(out) == [
        {
            "path": str(good),
            "line": 4,
            "column": 5,
            "code": "TET001",
            "message": DISCARDED.format("asyncio.create_task", "work()"),
        },
        {
            "path": str(good),
            "line": 5,
            "column": 11,
            "code": "TET002",
            "message": GATHERED.format("*(c for c in coros)"),
        },
        {
            "path": str(bad),
            "line": 1,
            "column": 5,
            "code": "E999",
            "message": "SyntaxError: '(' was never closed",
        },
        {
            "path": str(missing),
            "line": 0,
            "column": 0,
            "code": "E902",
            "message": "No such file or directory",
        },
    ]
    assert err == ""
    assert code == 2


def test_json_without_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "mod.py", "import asyncio\n")
    assert scan(capsys, "--format", "json", str(path)) == (0, "[]\n", "")


def test_directories_are_walked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dangling = "import asyncio\nasyncio.create_task(work())\n"
    for name in [
        "pkg/a.py",
        "pkg/sub/b.py",
        "pkg/sub/not_python.txt",
        ".hidden/c.py",
        "pkg/.cache/d.py",
        ".venv/lib/e.py",
        "venv/lib/f.py",
        "lib/python3.13/site-packages/g.py",
        "pkg/__pycache__/h.py",
        "env_with_another_name/lib/i.py",
    ]:
        write(tmp_path, name, dangling)
    write(tmp_path, "env_with_another_name/pyvenv.cfg", "home = /usr/bin\n")
    code, out, err = scan(capsys, str(tmp_path))
    found = [os.path.relpath(path, tmp_path) for path, *_ in reports(out)]
    assert found == [os.path.join("pkg", "a.py"), os.path.join("pkg", "sub", "b.py")]
    assert err == "2 findings in 2 files (2 files scanned)\n"
    assert code == 1
    # A path given by name is scanned even inside a skipped folder, whatever its suffix.
    hidden = tmp_path / ".hidden" / "c.py"
    text = tmp_path / "pkg" / "sub" / "not_python.txt"
    code, out, _ = scan(capsys, str(hidden), str(text), str(hidden))
    assert [found[0] for found in reports(out)] == [str(hidden), str(text)]


def test_exit_code_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The invalid escape sequence warns as the file is parsed: it must not show, nor
    # fail this test, which turns warnings into errors.
    source = 'import asyncio, re\nasyncio.run(main(re.compile("\\d")))\n'
    path = write(tmp_path, "mod.py", source)
    assert scan(capsys, str(path)) == (0, "", "No findings (1 file scanned)\n")


def test_what_only_the_compiler_refuses_is_no_syntax_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module that makes no task is checked by compiling it, which refuses more
    than ``ast.parse`` does: that is not the file's syntax error (the scan reads
    the syntax, as before), and a warning of the compiler never shows."""
    write(tmp_path, "a.py", "return 1\nawait x\nassert (1, 'always true')\n")
    write(tmp_path, "b.py", "if x is 1:\n    pass\n")
    assert scan(capsys, str(tmp_path)) == (0, "", "No findings (2 files scanned)\n")
    write(tmp_path, "c.py", "def (:\n")
    code, out, _ = scan(capsys, str(tmp_path))
    assert (code, out) == (
        2,
        f"{tmp_path / 'c.py'}:1:5: E999 SyntaxError: invalid syntax\n",
    )


def test_bad_inputs_exit_2_and_the_rest_is_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "a_syntax_error.py", "def (:\n")
    write(tmp_path, "b_undecodable.py", b"x = '\xff'\n")
    write(tmp_path, "d_dangling.py", "import asyncio\nasyncio.create_task(work())\n")
    missing = tmp_path / "missing"
    code, out, err = scan(capsys, str(tmp_path), str(missing))
    lines = out.splitlines()
    assert (
        lines[0]
        == f"{tmp_path / 'a_syntax_error.py'}:1:5: E999 SyntaxError: invalid syntax"
    )
    assert lines[1:] == [
        f"{tmp_path / 'b_undecodable.py'}:0:0: E902 cannot decode the file: "
        "invalid or missing encoding declaration",
        f"{tmp_path / 'd_dangling.py'}:2:1: TET001 "
        + DISCARDED.format("asyncio.create_task", "work()"),
        f"{missing}:0:0: E902 No such file or directory",
    ]
    assert (
        err == "1 finding in 1 file (1 file scanned); 3 inputs could not be scanned\n"
    )
    assert code == 2


def test_a_missing_path_is_an_error_and_no_file_was_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert scan(capsys, str(missing)) == (
        2,
        f"{missing}:0:0: E902 No such file or directory\n",
        "No findings (0 files scanned); 1 input could not be scanned\n",
    )


def test_python_dash_m(tmp_path: Path) -> None:
    path = write(tmp_path, "mod.py", "import asyncio\nasyncio.create_task(work())\n")
    result = subprocess.run(
        [sys.executable, "-m", "tether", "scan", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.startswith(f"{path}:2:1: TET001 dangling task: ")
    assert result.returncode == 1


def test_noqa_silences_each_new_code_on_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = EVERY.replace(
        ".add_done_callback(print)", ".add_done_callback(print)  # noqa: TET004"
    )
    source = source.replace("    _start(work())", "    _start(work())  # noqa: TET003")
    source = source.replace("work(), loop)", "work(), loop)  # noqa: TET005 (a reason)")
    source = source.replace("gather(a(), b())", "gather(a(), b())  # noqa: TET001")
    _, out, _ = scan(capsys, str(write(tmp_path, "mod.py", source)))
    assert [found[3] for found in reports(out)] == ["TET001", "TET002", "TET006"]


FLAGGED_EDGES = {
    "any helper's get_running_loop or get_event_loop gives a loop": """
        from . import helpers
        def f(self):
            helpers.get_running_loop().create_task(work())  # expect TET001
            self.get_event_loop().create_task(work())  # expect TET001
    """,
    "a task only shielded": """
        import asyncio
        async def f(self):
            await asyncio.shield(asyncio.create_task(work()))  # expect TET001
            return asyncio.shield(self.loop.create_task(work()))  # expect TET001
    """,
    "create_task bound in the function to a loop's": """
        from asyncio import create_task
        async def f(loop):
            create_task = loop.create_task
            create_task(work())  # expect TET001
    """,
    "a function that returns a task on one branch, decided by the call": """
        import asyncio
        class Runner:
            def run(self, coro, wait=False, *, mode=None):
                if wait:
                    return self.loop.run_until_complete(coro)
                elif mode is not None and mode == "sync":
                    return None
                return self.loop.create_task(coro)
            def go(self, flag):
                self.run(work())  # expect TET003
                self.run(work(), False)  # expect TET003
                self.run(work(), mode="async")  # expect TET003
                self.run(work(), wait=True)
                self.run(work(), flag)
                self.run(work(), mode="sync")
                self.run(*work())
    """,
    "a wrapper of a wrapper": """
        import asyncio
        def create_task(coro):
            loop = asyncio.get_running_loop()
            return loop.create_task(coro)
        def spawn_later(coro):
            return create_task(coro)
        async def f():
            spawn_later(work())  # expect TET003
    """,
}

NOT_FLAGGED_EDGES = {
    "ensure_future of a task or a future gives it back": """
        import asyncio
        async def f(self, loop, task: asyncio.Task, job: "asyncio.Future[int]"):
            fut = loop.create_future()
            asyncio.ensure_future(fut)
            asyncio.ensure_future(task)
            asyncio.ensure_future(job)
            asyncio.ensure_future(self._waiter)
            asyncio.ensure_future(loop.run_in_executor(None, print))
            made = asyncio.create_task(work())
            asyncio.ensure_future(made)
            await made
    """,
    "a shielded task kept by a name": """
        import asyncio
        async def f():
            task = asyncio.create_task(work())
            await asyncio.shield(task)
    """,
    "create_task bound in the function to a task group's, or a parameter": """
        from asyncio import create_task
        async def f(tg, loop):
            create_task = tg.create_task
            create_task(work())
        async def g(create_task):
            create_task(work())
    """,
    "a method called through a task group": """
        import asyncio
        class Pool:
            def create_task(self, coro):
                return asyncio.create_task(coro)
        async def f():
            async with asyncio.TaskGroup() as tg:
                tg.create_task(work())
    """,
}


@pytest.mark.parametrize("source", FLAGGED_EDGES.values(), ids=FLAGGED_EDGES)
def test_edges_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    """Issue 20, part 3: what real projects showed the scan missed."""
    check_marks(tmp_path, capsys, source, flagged=True)


@pytest.mark.parametrize("source", NOT_FLAGGED_EDGES.values(), ids=NOT_FLAGGED_EDGES)
def test_edges_do_not_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    """Issue 20, part 3: what real projects showed the scan got wrong."""
    check_marks(tmp_path, capsys, source, flagged=False)


PROJECT = {
    "pkg/__init__.py": "from .util import spawn as spawn\n",
    "pkg/util.py": """
        from asyncio import get_running_loop
        def create_task(coro):
            return get_running_loop().create_task(coro)
        def spawn(coro):
            return create_task(coro)
        def kept(coro):
            task = create_task(coro)
            TASKS.add(task)
            return task
    """,
    "pkg/coordinator.py": """
        from .util import create_task
        class Coordinator:
            def leave_group_soon(self):
                task = create_task(self._leave())
                return task
            def start(self):
                return create_task(self._leave())
            async def _leave(self): ...
        class Other:
            def start(self): ...
    """,
    "pkg/consumer.py": """
        import pkg
        import pkg.util as u
        from pkg import spawn
        from pkg.util import kept
        class Consumer:
            def unsubscribe(self):
                self._coordinator.leave_group_soon()  # expect TET003
                u.create_task(work())  # expect TET003
                pkg.util.spawn(work())  # expect TET003
                spawn(work())  # expect TET003
                kept(work())
                self._coordinator.start()
                task = spawn(work())
                return task
    """,
}


def test_returned_tasks_are_followed_across_modules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20, part 3: a task returned by a function of another module (through
    an import, a package's re-export, a wrapper of the project's own, or a method
    whose name is unique in the project) and dropped by its caller is found; a
    method name two classes share is not followed."""
    for name, source in PROJECT.items():
        write(tmp_path, name, source)
    consumer = tmp_path / "pkg" / "consumer.py"
    expected = [
        number
        for number, line in enumerate(consumer.read_text().splitlines(), start=1)
        if "# expect TET003" in line
    ]
    code, out, err = scan(capsys, str(tmp_path))
    found = reports(out)
    assert [(path, line, kind) for path, line, _, kind, _ in found] == [
        (str(consumer), line, "TET003") for line in expected
    ]
    util = tmp_path / "pkg" / "util.py"
    assert found[0][4].startswith(
        "returned task dropped: self._coordinator.leave_group_soon() returns the task "
        f"get_running_loop().create_task() makes at {util}:4, and the result is "
        "discarded here, so the task may be garbage-collected mid-flight; in "
        "create_task, use tether.spawn(coro), "
    )
    assert err == "4 findings in 1 file (4 files scanned)\n"
    assert code == 1
    # The same module alone knows nothing of the others.
    assert scan(capsys, str(consumer))[0] == 0


def test_edge_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20: a shielded task, a future whose coroutine runs on the calling
    thread's own loop, and a coroutine that loops forever each get their own
    advice."""
    path = write(
        tmp_path,
        "mod.py",
        """\
        import asyncio
        async def consume(queue):
            while True:
                await queue.get()
        async def f(queue):
            await asyncio.shield(asyncio.create_task(work()))
            loop = asyncio.get_running_loop()
            asyncio.run_coroutine_threadsafe(work(), loop)
            asyncio.create_task(consume(queue))
        """,
    )
    _, out, _ = scan(capsys, str(path))
    shielded, own_loop, endless = [message for *_, message in reports(out)]
    assert shielded == (
        "dangling task: the result of asyncio.create_task() is only shielded: "
        "asyncio.shield() keeps no reference to it once the wait on the shield is "
        "cancelled, so the task may be garbage-collected mid-flight; use "
        "`await tether.spawn(work())`: cancelling a wait on a tether handle never "
        "cancels the task, and the registry keeps it"
    )
    assert own_loop == (
        "discarded future: asyncio.run_coroutine_threadsafe() is called in a "
        "coroutine with the loop that runs it, so the coroutine only gets scheduled "
        "on this same thread and nothing ever waits for it (a .result() here would "
        "block the loop for good); the result is discarded, so the task may be "
        "garbage-collected mid-flight and its failure is lost without a trace; use "
        f"tether.spawn(work()), {NEEDS}"
    )
    assert endless == (
        "dangling task: the result of asyncio.create_task() is discarded, so the "
        "task may be garbage-collected mid-flight; use "
        f"tether.spawn(consume(queue), daemon=True), {NEEDS}; consume() loops "
        "forever (a `while True` with no break or return), so it is a daemon, which "
        "a closing registry cancels instead of waiting for it (or use "
        "TaskRegistry.spawn_service to restart it when it fails)"
    )


def test_noqa_ruf006_silences_tet001(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20: ruff's RUF006 marks the same hazard as TET001."""
    path = write(
        tmp_path,
        "mod.py",
        """\
        import asyncio
        async def f():
            asyncio.create_task(work())  # noqa: RUF006 - meant
            asyncio.create_task(work())  # noqa: E501, RUF006
            asyncio.gather(a(), b())  # noqa: RUF006
        """,
    )
    _, out, _ = scan(capsys, str(path))
    assert [(line, code) for _, line, _, code, _ in reports(out)] == [(5, "TET006")]


def test_a_task_kept_on_one_branch_decided_by_the_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20, part 3: a function that stores the task it returns only on one
    branch drops it on the other; the call's literal or default arguments decide."""
    check_marks(
        tmp_path,
        capsys,
        """
        import asyncio
        class Pool:
            def spawn(self, coro, keep=True):
                task = asyncio.create_task(coro)
                if keep:
                    self._tasks.add(task)
                return task
            def spawn_while_running(self, coro):
                task = asyncio.create_task(coro)
                if self.running:
                    self._tasks.add(task)
                return task
            def go(self, flag):
                self.spawn(work(), keep=False)  # expect TET003
                self.spawn(work())
                self.spawn(work(), flag)
                self.spawn_while_running(work())
        """,
        flagged=True,
    )
