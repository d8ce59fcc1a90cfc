"""``tether scan --fix`` and ``--diff``: what is rewritten, what is refused, and that
nothing else changes.

Like ``test_scan.py``, the sources are written into ``tmp_path``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from tether._cli import main

if TYPE_CHECKING:
    from pathlib import Path

BEFORE = '''\
"""A module."""

import asyncio  # the loop
from functools import partial

async def work(n=0): ...

async def serve(coros, other):
    s = "é"; asyncio.create_task(work(1),  name="w")   # spacing and comment kept
    asyncio.ensure_future(work())
    loop = asyncio.get_running_loop()
    loop.create_task(
        work(2),  # a comment inside the call
    )
    other.loop.create_task(work())
    asyncio.create_task(work(), context=None)
    asyncio.create_task(work())  # noqa: TET001 - meant
    task = asyncio.create_task(work())
'''

AFTER = '''\
"""A module."""

import asyncio  # the loop
from functools import partial
import tether

async def work(n=0): ...

async def serve(coros, other):
    s = "é"; tether.spawn(work(1),  name="w")   # spacing and comment kept
    tether.spawn(work())
    loop = asyncio.get_running_loop()
    tether.spawn(
        work(2),  # a comment inside the call
    )
    other.loop.create_task(work())
    asyncio.create_task(work(), context=None)
    asyncio.create_task(work())  # noqa: TET001 - meant
    task = asyncio.create_task(work())
'''


NEEDS = (
    "The rewritten calls need tether installed (pip install tether), and run wherever "
    "create_task ran: where no tether.TaskRegistry is bound, a task goes to the "
    "default registry of the event loop's run, which holds it, logs its failure and "
    "names it if the run ends with it running, but neither drains nor limits; bind a "
    "TaskRegistry around the program for a graceful shutdown.\n"
)


def write(directory: Path, source: str, name: str = "mod.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["scan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fix_rewrites_what_it_can_prove_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BEFORE)
    code, out, err = scan(capsys, "--fix", str(path))
    assert path.read_text(encoding="utf-8") == AFTER
    left = [line.split(": ", 1)[0] for line in out.splitlines()]
    assert left == [f"{path}:16:5", f"{path}:17:5", f"{path}:19:12"]
    assert "(not fixed: the loop is not known to be the running one" in out
    assert "(not fixed: context= has no tether.spawn equivalent)" in out
    assert "(not fixed: only a call that is a statement of its own" in out
    assert err == (
        "Fixed 3 findings in 1 file; left: 3 findings in 1 file (1 file scanned)\n"
        + NEEDS
    )
    assert code == 1


def test_fix_keeps_every_other_line_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # CRLF line endings, a coding cookie and tabs survive the rewrite.
    source = (
        "# -*- coding: latin-1 -*-\r\n"
        "import asyncio\r\n"
        "\r\n"
        "async def f():\r\n"
        "\tx = '\xe9'\r\n"
        "\tasyncio.create_task(work())\t# why\r\n"
        "\treturn x\r\n"
    ).encode("latin-1")
    path = tmp_path / "mod.py"
    path.write_bytes(source)
    assert scan(capsys, "--fix", str(path))[0] == 0
    before, after = (
        source.splitlines(keepends=True),
        path.read_bytes().splitlines(keepends=True),
    )
    assert after == [
        *before[:2],
        b"import tether\r\n",
        *before[2:5],
        b"\ttether.spawn(work())\t# why\r\n",
        before[6],
    ]
    ast.parse(path.read_bytes())


def test_fix_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, BEFORE)
    scan(capsys, "--fix", str(path))
    once = path.read_bytes()
    code, _, err = scan(capsys, "--fix", str(path))
    assert path.read_bytes() == once
    assert err.startswith("Fixed 0 findings in 0 files; left: 3 findings")
    assert code == 1


def test_diff_prints_the_fix_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, "import asyncio\nasync def f():\n    asyncio.create_task(g())\n"
    )
    code, out, err = scan(capsys, "--diff", str(path))
    assert out.splitlines() == [
        f"--- {path}",
        f"+++ {path}",
        "@@ -1,3 +1,4 @@",
        " import asyncio",
        "+import tether",
        " async def f():",
        "-    asyncio.create_task(g())",
        "+    tether.spawn(g())",
    ]
    assert err == (
        "Would fix 1 finding in 1 file; left: no findings (1 file scanned)\n" + NEEDS
    )
    assert code == 1
    assert (
        path.read_text()
        == "import asyncio\nasync def f():\n    asyncio.create_task(g())\n"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "import asyncio\nasyncio.ensure_future(main())\n",
            "import asyncio\nasyncio.ensure_future(main())\n",
            id="nothing fixed: no import added",
        ),
        pytest.param(
            '"""Doc."""\nasync def main(): ...\nasyncio.create_task(main())\n',
            '"""Doc."""\nimport tether\nasync def main(): ...\ntether.spawn(main())\n',
            id="no import: after the docstring",
        ),
        pytest.param(
            "import asyncio\nimport tether\ndef f():\n    asyncio.create_task(g())\n",
            "import asyncio\nimport tether\ndef f():\n    tether.spawn(g())\n",
            id="already imported",
        ),
        pytest.param(
            "import asyncio\nasync def g(): ...\nclass C:\n    async def m(self): ...\n"
            "    def f(self):\n        asyncio.ensure_future(self.m())\n"
            "        asyncio.ensure_future(g())\n",
            "import asyncio\nimport tether\nasync def g(): ...\nclass C:\n"
            "    async def m(self): ...\n    def f(self):\n"
            "        tether.spawn(self.m())\n        tether.spawn(g())\n",
            id="ensure_future of an async def of the module",
        ),
    ],
)
def test_where_the_import_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, expected: str
) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source)
    scan(capsys, "--fix", str(path))
    assert path.read_text() == expected


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        ("asyncio.create_task(work(), name=label)", "name= is not a string literal"),
        ("asyncio.create_task(work(), eager_start=True)", "eager_start= has no"),
        ("asyncio.create_task(*coros)", "it is not given exactly one coroutine"),
        ("asyncio.ensure_future(work(), loop=loop)", "loop= has no"),
        ("asyncio.ensure_future(coro)", "ensure_future() also takes futures"),
        ("loop.create_task(work())", "the loop is not known to be the running one"),
        ("self._loop.create_task(work())", "the loop is not known"),
        ("flag and asyncio.create_task(work())", "only a call that is a statement"),
        ("loop.call_soon(lambda: asyncio.create_task(work()))", "only a call that"),
    ],
)
def test_refusals_are_reported_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], call: str, reason: str
) -> None:
    source = (
        "import asyncio\nasync def work(): ...\n"
        f"async def f(self, loop, coros, coro, label, flag):\n    {call}\n"
    )
    path = write(tmp_path, source)
    code, out, _ = scan(capsys, "--fix", str(path))
    assert path.read_text() == source
    assert f"(not fixed: {reason}" in out
    assert code == 1


def test_a_module_that_binds_tether_otherwise_is_not_fixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (
        "import asyncio\nfrom ropes import tether\n"
        "async def f():\n    asyncio.create_task(g())\n"
    )
    path = write(tmp_path, source)
    code, out, _ = scan(capsys, "--fix", str(path))
    assert path.read_text() == source
    assert out.endswith(
        "(not fixed: the name tether is bound to something else here)\n"
    )
    assert code == 1


def test_fix_with_json_and_select(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BEFORE)
    code, out, err = scan(
        capsys, "--fix", "--format", "json", "--select", "TET001", str(path)
    )
    assert [(item["line"], item["code"]) for item in json.loads(out)] == [
        (16, "TET001"),
        (17, "TET001"),
        (19, "TET001"),
    ]
    assert err == ""
    assert code == 1
    # With TET001 not selected, nothing is rewritten.
    path = write(tmp_path, BEFORE, "other.py")
    scan(capsys, "--fix", "--ignore", "TET001", str(path))
    assert path.read_text() == BEFORE


def test_diff_and_json_do_not_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BEFORE)
    assert scan(capsys, "--diff", "--format", "json", str(path)) == (
        2,
        "",
        "tether scan: --diff prints a diff, not JSON\n",
    )


def test_without_libcst_fix_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "libcst", None)  # makes `import libcst` fail
    path = write(tmp_path, BEFORE)
    code, out, err = scan(capsys, "--fix", str(path))
    assert (code, out) == (2, "")
    assert err == (
        "tether scan --fix and --diff need libcst, which is not installed: "
        "pip install libcst (the 'fix' extra of tether)\n"
    )
    assert path.read_text() == BEFORE
    # The scan itself never needs it.
    assert scan(capsys, str(path))[0] == 1


def test_bad_inputs_are_reported_and_the_rest_is_fixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "def (:\n", "a.py")
    good = write(tmp_path, "import asyncio\nasyncio.create_task(g())\n", "b.py")
    code, out, _ = scan(capsys, "--fix", str(tmp_path))
    assert out == f"{tmp_path / 'a.py'}:1:5: E999 SyntaxError: invalid syntax\n"
    assert good.read_text() == "import asyncio\nimport tether\ntether.spawn(g())\n"
    assert code == 2


def test_import_tether_and_a_plain_scan_never_import_libcst(tmp_path: Path) -> None:
    path = write(tmp_path, BEFORE)
    probe = (
        "import sys, tether; loaded = [sorted(sys.modules)]; "
        "from tether._cli import main; main(['scan', sys.argv[1]]); "
        "loaded.append(sorted(sys.modules)); "
        "print([[m for m in names if m.startswith(('libcst', 'tether._cli'))] "
        "for names in loaded])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    before, after = ast.literal_eval(out.splitlines()[-1])
    assert before == []
    # The scan's own modules, but neither libcst nor the rewrite and the writer.
    assert "tether._cli._scan" in after
    assert not [
        name
        for name in after
        if name.startswith(
            ("libcst", "tether._cli._scan_fix", "tether._cli._scan_write")
        )
    ]


def test_registry_rewrites_to_its_spawn_and_adds_no_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20: library code that owns a registry rewrites to it."""
    source = (
        "import asyncio\n"
        "class Client:\n"
        "    def dispatch(self, event):\n"
        "        asyncio.create_task(self.handle(event), name='event')\n"
        "    async def handle(self, event): ...\n"
        "def helper():\n"
        "    asyncio.create_task(work())\n"
    )
    path = write(tmp_path, source)
    code, out, err = scan(capsys, "--fix", "--registry", "self._tasks", str(path))
    assert path.read_text() == source.replace(
        "asyncio.create_task(self.handle", "self._tasks.spawn(self.handle"
    )
    assert out.endswith(
        "(not fixed: self is not bound where this call runs, so self._tasks.spawn "
        "cannot be reached there)\n"
    )
    assert err.splitlines()[-1] == (
        "The rewritten calls need self._tasks to be an open tether.TaskRegistry where "
        "they run (await self._tasks.open() where the object starts, and await "
        "self._tasks.aclose() where it closes)."
    )
    assert code == 1


@pytest.mark.parametrize("expr", ["self._tasks()", "1", "a[0]", ""])
def test_registry_must_be_a_dotted_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expr: str
) -> None:
    path = write(tmp_path, BEFORE)
    with pytest.raises(SystemExit):
        scan(capsys, "--fix", "--registry", expr, str(path))
    assert "is not a name or a dotted name" in capsys.readouterr().err
    assert path.read_text() == BEFORE


def test_fix_source_refuses_a_registry_that_is_no_name() -> None:
    from tether._cli._scan_fix import fix_source

    with pytest.raises(ValueError, match="registry= takes a name or a dotted name"):
        fix_source(b"import asyncio\n", [], registry="f()")
    # The writer's entry point: new bytes and a count, to self._tasks.spawn.
    assert fix_source(
        b"import asyncio\ndef f(self):\n    asyncio.create_task(g())\n",
        [(3, 4)],
        registry="self._tasks",
    ) == (b"import asyncio\ndef f(self):\n    self._tasks.spawn(g())\n", 1)


def test_an_endless_coroutine_becomes_a_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20: a `while True` consumer spawned plainly would hold every shutdown
    for the whole drain timeout."""
    source = (
        "import asyncio\n"
        "async def consume(queue):\n"
        "    while True:\n"
        "        await queue.get()\n"
        "async def main(queue):\n"
        "    asyncio.create_task(consume(queue))\n"
        "    asyncio.create_task(\n"
        "        consume(queue),\n"
        "        name='consumer',  # the second one\n"
        "    )\n"
    )
    path = write(tmp_path, source)
    code, _, err = scan(capsys, "--fix", str(path))
    assert path.read_text() == (
        "import asyncio\n"
        "import tether\n"
        "async def consume(queue):\n"
        "    while True:\n"
        "        await queue.get()\n"
        "async def main(queue):\n"
        "    tether.spawn(consume(queue), daemon=True)\n"
        "    tether.spawn(\n"
        "        consume(queue),\n"
        "        name='consumer', daemon=True,  # the second one\n"
        "    )\n"
    )
    assert err.endswith(
        " 2 of them spawn daemons (daemon=True): their coroutines loop forever, so a "
        "closing registry cancels them instead of waiting for them.\n"
    )
    assert code == 0


@pytest.mark.parametrize(
    ("binding", "reason"),
    [
        ("def f(tether):\n", "tether is a parameter of f()"),
        (
            "def f():\n    try:\n        pass\n    except OSError as tether:\n"
            "        pass\n",
            "`except ... as tether` binds it in f()",
        ),
        (
            "def f(x):\n    match x:\n        case tether:\n            pass\n",
            "a case pattern binds tether in f()",
        ),
        ("def f():\n    tether = 1\n", "tether is a local of f()"),
    ],
)
def test_tether_bound_in_the_function_refuses_its_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], binding: str, reason: str
) -> None:
    """Issue 20: the new name must mean tether where the call runs."""
    source = (
        f"import asyncio\n{binding}"
        "    asyncio.create_task(work())\n"
        "def g():\n"
        "    asyncio.create_task(work())\n"
    )
    path = write(tmp_path, source)
    code, out, _ = scan(capsys, "--fix", str(path))
    fixed = path.read_text()
    # The other function is fixed; this one is left, with the reason.
    assert fixed.endswith("def g():\n    tether.spawn(work())\n")
    assert fixed.count("asyncio.create_task(work())") == 1
    assert out.endswith(
        f"(not fixed: {reason}, so tether.spawn would not be tether's there)\n"
    )
    assert code == 1


def test_a_shadowed_create_task_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20: `create_task = loop.create_task` is found, and not rewritten."""
    source = (
        "from asyncio import create_task\n"
        "async def f(loop):\n"
        "    create_task = loop.create_task\n"
        "    create_task(work())\n"
    )
    path = write(tmp_path, source)
    code, out, _ = scan(capsys, "--fix", str(path))
    assert path.read_text() == source
    assert out.endswith(
        "(not fixed: create_task is bound in f() to loop.create_task, not to "
        "asyncio's create_task)\n"
    )
    assert code == 1


def test_two_calls_on_a_line_count_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20: the summary counts calls, not lines."""
    path = write(
        tmp_path,
        "import asyncio\nasync def f():\n"
        "    asyncio.create_task(a()); asyncio.create_task(b())\n",
    )
    _, _, err = scan(capsys, "--fix", str(path))
    assert err.startswith("Fixed 2 findings in 1 file;")


def test_a_docstring_followed_by_an_import_stays_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    '''Issue 20: `import tether` goes after `"""Doc."""; import x`.'''
    path = write(
        tmp_path,
        '"""Doc."""; import asyncio\nasync def f():\n    asyncio.create_task(g())\n',
    )
    scan(capsys, "--fix", str(path))
    assert path.read_text() == (
        '"""Doc."""; import asyncio\nimport tether\nasync def f():\n'
        "    tether.spawn(g())\n"
    )
    assert ast.get_docstring(ast.parse(path.read_text())) == "Doc."


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch")
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b"import asyncio\nasync def f():\n    asyncio.create_task(g())",
            id="no final newline",
        ),
        pytest.param(
            b"import asyncio\r\nasync def f():\r\n    asyncio.create_task(g())\r\n",
            id="CRLF",
        ),
        pytest.param(
            b"import asyncio\rasync def f():\r    asyncio.create_task(g())\r",
            id="CR only",
        ),
        pytest.param(
            "# -*- coding: latin-1 -*-\nimport asyncio\nasync def f():\n"
            "    x = 'é'\n    asyncio.create_task(g())\n".encode("latin-1"),
            id="latin-1",
        ),
        pytest.param(
            b'"""Doc."""; import asyncio\nasync def f():\n'
            b"    asyncio.create_task(g())\n",
            id="docstring; import",
        ),
    ],
)
def test_diff_applies_with_patch(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
) -> None:
    """Issue 20: `tether scan --diff | patch -p1` gives what --fix gives."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_bytes(data)
    (tmp_path / "fixed.py").write_bytes(data)
    scan(capsys, "--fix", "fixed.py")
    # The diff is bytes in the file's own encoding: read them as bytes.
    result = subprocess.run(
        [sys.executable, "-m", "tether", "scan", "--diff", "src/mod.py"],
        capture_output=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    patch_text = result.stdout
    subprocess.run(
        ["patch", "-p1", "--quiet"], input=patch_text, cwd=tmp_path, check=True
    )
    assert (tmp_path / "src" / "mod.py").read_bytes() == (
        tmp_path / "fixed.py"
    ).read_bytes()
    assert (tmp_path / "fixed.py").read_bytes() != data


def test_get_event_loop_is_the_running_loop_in_a_coroutine_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a coroutine, get_event_loop() gives the running loop (asyncio's
    documentation says so); in a plain function it may give a loop not running."""
    source = (
        "import asyncio\n"
        "async def f():\n"
        "    loop = asyncio.get_event_loop()\n"
        "    loop.create_task(work())\n"
        "    asyncio.get_event_loop().create_task(work())\n"
        "def g():\n"
        "    asyncio.get_event_loop().create_task(work())\n"
    )
    path = write(tmp_path, source)
    code, out, _ = scan(capsys, "--fix", str(path))
    assert path.read_text() == (
        "import asyncio\n"
        "import tether\n"
        "async def f():\n"
        "    loop = asyncio.get_event_loop()\n"
        "    tether.spawn(work())\n"
        "    tether.spawn(work())\n"
        "def g():\n"
        "    asyncio.get_event_loop().create_task(work())\n"
    )
    assert out.count("(not fixed: the loop is not known to be the running one") == 1
    assert code == 1


PROGRAM = """\
import asyncio

results = []


async def work(n):
    await asyncio.sleep(0)
    results.append(n)


async def fail():
    raise ValueError("boom")


async def consume(queue):
    while True:
        results.append(await queue.get())


def data_received(data):  # a protocol callback: no task, no registry around it
    asyncio.get_running_loop().create_task(work(data))


async def main():
    queue = asyncio.Queue()
    asyncio.create_task(consume(queue), name="consumer")
    asyncio.ensure_future(work(1))
    asyncio.create_task(fail())
    asyncio.get_running_loop().call_soon(data_received, 2)
    queue.put_nowait(3)
    for _ in range(10):
        await asyncio.sleep(0)
    print(sorted(results))


asyncio.run(main())
"""


def test_fixed_code_runs_with_no_registry_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 20, part 2: --fix never turns working code into failing code. The fixed
    program opens no registry, spawns from a coroutine and from a loop callback, and
    starts an endless consumer: it prints what the original printed, logs the
    failure with the task's name, and ends."""
    original = write(tmp_path, PROGRAM, "original.py")
    fixed = write(tmp_path, PROGRAM, "fixed.py")
    code, _, err = scan(capsys, "--fix", str(fixed))
    assert (code, err.split(";")[0]) == (0, "Fixed 5 findings in 1 file")
    text = fixed.read_text()
    assert "asyncio.create_task" not in text
    assert "tether.spawn(consume(queue), name='consumer', daemon=True)" in (
        text.replace('"', "'")
    )

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-X", "dev", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    before, after = run(original), run(fixed)
    assert before.returncode == after.returncode == 0, after.stderr
    assert before.stdout == after.stdout == "[1, 2, 3]\n"
    assert "NoRegistry" not in after.stderr
    assert "ValueError: boom" in after.stderr
