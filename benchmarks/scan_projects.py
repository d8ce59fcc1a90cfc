"""``tether scan`` on real projects: findings per code beside ruff's RUF006, the
``--fix`` results, and the time to scan 1,000 files.

Not part of the test run. Unpack each project (an sdist or a wheel from the package
index) into its own folder under one directory, outside this repository, then:

    python benchmarks/scan_projects.py DIR                  # the table
    python benchmarks/scan_projects.py DIR --list           # every finding, to read
    python benchmarks/scan_projects.py DIR --fix COPIES --python PY
    python benchmarks/scan_projects.py DIR --sites 25       # unreported sites, to read

``--sites N`` prints, for each project, N unreported call sites of ``create_task``,
``ensure_future``, ``gather`` and ``run_coroutine_threadsafe`` drawn at random (the
same ones on every run), each with the lines around it, to read and judge whether
the scan missed a hazard there: the estimate of its recall.

``--fix`` copies each project into COPIES, runs ``tether scan --fix`` on the copy,
checks that every changed file parses, and imports each changed module with the
interpreter PY (which needs the projects' dependencies and tether installed). For the
projects named in ``_RUNS``, it then runs a part of the code it rewrote, in the copy and
in the original, with no registry opened, and compares what each prints (only
loopback addresses are ever connected to). ruff must be on PATH.
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tether._cli._scan import scan_paths
from tether._cli._scan_rules import RULES

_SITES = frozenset(
    {"create_task", "ensure_future", "gather", "run_coroutine_threadsafe"}
)


def _sites(root: Path, count: int) -> None:
    """Print ``count`` unreported sites of ``root``, drawn with a fixed seed."""
    reports, _ = scan_paths([str(root)])
    reported = {(report.path, report.line) for report in reports}
    found: list[tuple[Path, int]] = []
    for path in _python_files(root):
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else None
            name = func.id if isinstance(func, ast.Name) else name
            if name in _SITES and (str(path), node.lineno) not in reported:
                found.append((path, node.lineno))
    sample = sorted(random.Random(20).sample(found, min(count, len(found))))
    print(f"## {root.name}: {len(found)} unreported sites, {len(sample)} drawn")
    for path, line in sample:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        print(f"\n### {path.relative_to(root)}:{line}")
        for number in range(max(1, line - 6), min(len(lines), line + 4) + 1):
            mark = ">" if number == line else " "
            print(f"{mark}{number:5} {lines[number - 1]}")


# A part of each project that runs the calls --fix rewrote (release named in the
# study), with no registry opened: the output must be the same before and after.
_RUNS = {
    "aio_pika": """
import asyncio, aio_pika
async def main():
    conn = aio_pika.Connection("amqp://guest:guest@127.0.0.1:9/")
    conn.__del__()  # spawns self.close()
    for _ in range(20):
        await asyncio.sleep(0)
    print("closed:", conn.is_closed)
asyncio.run(main())
""",
    "aiogram": """
import asyncio, warnings
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendMessage
warnings.simplefilter("ignore")
async def main():
    session = AiohttpSession(api=TelegramAPIServer.from_base("http://127.0.0.1:9"))
    bot, dp, answered = Bot("42:TEST", session=session), Dispatcher(), []
    @dp.message()
    async def slow(message):
        await asyncio.sleep(0.05)
        answered.append(message.text)
        return SendMessage(chat_id=1, text="hi")  # answered in a done callback
    update = {"update_id": 1, "message": {"message_id": 1, "date": 0,
              "chat": {"id": 1, "type": "private"}, "text": "x"}}
    print("webhook:", await dp.feed_webhook_update(bot, update, _timeout=0.01))
    await asyncio.sleep(0.3)
    print("handled:", answered)
    await session.close()
asyncio.run(main())
""",
    "nats_py": """
import asyncio
from nats.aio.client import Client
async def main():
    nc = Client()
    await nc._process_err("'Unknown Protocol Operation'")  # spawns self._close()
    for _ in range(20):
        await asyncio.sleep(0)
    print("closed:", nc.is_closed, "error:", nc.last_error)
asyncio.run(main())
""",
    "slack_bolt": """
import asyncio, logging
from slack_bolt.lazy_listener.asyncio_runner import AsyncioLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
async def main():
    ran = []
    async def lazy(body):
        ran.append(body)
    request = AsyncBoltRequest(
        body='{"type": "event_callback"}',
        headers={"content-type": ["application/json"]},
    )
    AsyncioLazyListenerRunner(logging.getLogger("bolt")).start(lazy, request)
    for _ in range(20):
        await asyncio.sleep(0)
    print("lazy listener ran:", ran)
asyncio.run(main())
""",
}


def _run(python: str, root: Path, script: str) -> str:
    result = subprocess.run(
        [python, "-X", "dev", "-c", script],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)}, cwd=root,
    )  # fmt: skip
    failed = "NoRegistry" in result.stderr or result.returncode != 0
    return ("FAILED " if failed else "") + result.stdout.strip().replace("\n", " / ")


def _python_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if path.is_file())


def _ruff_count(root: Path) -> int:
    result = subprocess.run(
        ["ruff", "check", "--select", "RUF006", "--isolated", "--output-format",
         "json", "--exit-zero", str(root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return len(json.loads(result.stdout))


def _table(projects: list[Path], *, show: bool) -> None:
    codes = list(RULES)
    print("| project | files | RUF006 | " + " | ".join(codes) + " |")
    print("|---" * (3 + len(codes)) + "|")
    for root in projects:
        reports, scanned = scan_paths([str(root)])
        counts = collections.Counter(report.code for report in reports)
        row = [root.name, str(scanned), str(_ruff_count(root))]
        row += [str(counts[code]) for code in codes]
        print("| " + " | ".join(row) + " |")
        if show:
            for report in reports:
                print(f"    {report}", file=sys.stderr)


def _parses(path: Path) -> bool:
    try:
        ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return False
    return True


def _fix(projects: list[Path], copies: Path, python: str) -> None:
    print("| project | files changed | calls fixed | parse | import | run |")
    print("|---|---|---|---|---|---|")
    for root in projects:
        copy = copies / root.name
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        before = {path: path.read_bytes() for path in _python_files(copy)}
        subprocess.run(
            [sys.executable, "-m", "tether", "scan", "--fix", str(copy)],
            capture_output=True, check=False,
        )  # fmt: skip
        changed = [path for path, data in before.items() if path.read_bytes() != data]
        fixed = sum(
            path.read_text(encoding="utf-8").count("tether.spawn(")
            - before[path].decode("utf-8").count("tether.spawn(")
            for path in changed
        )
        parsed = sum(1 for path in changed if _parses(path))
        imported = failures = 0
        for path in changed:
            module = ".".join(path.relative_to(copy).with_suffix("").parts)
            result = subprocess.run(
                [python, "-c", f"import {module}"],
                capture_output=True, text=True, check=False,
                env={**os.environ, "PYTHONPATH": str(copy)},
            )  # fmt: skip
            if result.returncode == 0:
                imported += 1
            else:
                failures += 1
                last = result.stderr.strip().splitlines()[-1:]
                print(f"    {module}: {' '.join(last)}", file=sys.stderr)
        ran = "-"
        script = _RUNS.get(root.name.split("-")[0])
        if script is not None and changed:
            before, after = _run(python, root, script), _run(python, copy, script)
            ran = "same output" if before == after else "DIFFERENT"
            print(f"    {root.name}: {after}", file=sys.stderr)
        print(
            f"| {root.name} | {len(changed)} | {fixed} | {parsed}/{len(changed)} | "
            f"{imported}/{len(changed)} | {ran} |"
        )


def _timing(projects: list[Path], count: int = 1000) -> None:
    """The time to scan ``count`` files, beside the time only to read and parse
    them (the floor: every file is parsed, to report syntax errors), in CPU
    seconds, which a loaded machine disturbs less than wall-clock ones."""
    files = [str(path) for root in projects for path in _python_files(root)][:count]
    floor = scan = float("inf")
    for _ in range(3):
        gc.disable()  # as the scan does: syntax trees hold no cycles
        start = time.process_time()
        for name in files:
            with contextlib.suppress(SyntaxError, ValueError):
                ast.parse(Path(name).read_bytes())
        floor = min(floor, time.process_time() - start)
        gc.enable()
        start = time.process_time()
        _, scanned = scan_paths(files)
        scan = min(scan, time.process_time() - start)
    print(
        f"\nscanned {scanned} files in {scan:.2f} s of CPU; reading and parsing them "
        f"alone takes {floor:.2f} s ({scan / floor:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--list", action="store_true", help="print every finding")
    parser.add_argument("--fix", type=Path, metavar="COPIES")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--sites", type=int, metavar="N")
    args = parser.parse_args()
    projects = sorted(
        path
        for path in args.directory.iterdir()
        if path.is_dir() and not path.name.startswith(".")
    )
    if args.sites:
        for root in projects:
            _sites(root, args.sites)
    elif args.fix:
        _fix(projects, args.fix, args.python)
    else:
        _table(projects, show=args.list)
        _timing(projects)


if __name__ == "__main__":
    main()
