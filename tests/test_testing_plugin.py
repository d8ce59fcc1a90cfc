"""tether.testing, run in pytester sessions of its own, on asyncio and trio."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["pytester"]

RECIPE = Path(__file__).resolve().parent / "recipes" / "leak_check.py"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
CONFTEST = Path(__file__).resolve().parent / "conftest.py"

STRICT = ("-p", "anyio", "-W", "error", "--strict-markers", "--strict-config")


def test_a_leaking_test_errors_naming_the_task_and_its_spawn_site(
    pytester: pytest.Pytester,
) -> None:
    path = pytester.makepyfile(test_recipe=RECIPE.read_text("utf-8"))
    source = path.read_text("utf-8").splitlines()
    line = 1 + next(i for i, text in enumerate(source) if "nobody allowed" in text)
    result = pytester.runpytest_subprocess(*STRICT, "-v")
    result.assert_outcomes(passed=6, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test_leaks_a_task?asyncio? PASSED*",
            "*test_leaks_a_task?asyncio? ERROR*",
            "*test_leaks_a_task?trio? PASSED*",
            "*test_leaks_a_task?trio? ERROR*",
        ],
        consecutive=False,
    )
    # The ERRORS section only: under CI=true, pytest repeats whole messages in
    # its short summary.
    lines = result.stdout.lines
    lines = lines[: lines.index(next(x for x in lines if "short test summary" in x))]
    site = f"(spawned at {path}:{line})"
    assert lines.count(f"  task 'heartbeat' {site}") == 2
    assert not any("heartbeat main" in line for line in lines if "  task " in line)
    for outcome in ("test_clean", "test_allowed"):
        result.stdout.fnmatch_lines([f"*{outcome}?asyncio? PASSED*"])
        result.stdout.fnmatch_lines([f"*{outcome}?trio? PASSED*"])
    # The error the testing page shows is this run's, but for the file's folder.
    shown = DOCS.read_text("utf-8").split("```text\n", 1)[1].split("```", 1)[0]
    shown = shown.replace("test_recipe.py:44", f"{path}:{line}")
    expected = [text.strip("_ ") for text in shown.splitlines()]  # any width
    printed = [text.strip("_ ") for text in lines]
    start = printed.index(expected[0])
    assert printed[start : start + len(expected)] == expected


def test_the_ini_option_checks_every_test_and_names_unawaited_failures(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntether_no_leaks = true\n")
    pytester.makepyfile(
        test_failing="""
        import asyncio
        import anyio
        import pytest
        import tether

        pytestmark = pytest.mark.anyio

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        async def boom():
            raise ValueError("boom")

        async def test_unawaited_failure(tether_registry):
            await tether.spawn(boom).wait()

        async def test_raw_asyncio_task(anyio_backend):
            if anyio_backend == "asyncio":
                test_raw_asyncio_task.task = asyncio.get_running_loop().create_task(
                    asyncio.Event().wait(), name="raw"
                )

        @pytest.mark.tether_no_leaks(False)
        async def test_opted_out(tether_registry):
            await tether.spawn(boom).wait()

        @pytest.mark.tether_no_leaks(enabled=False)
        async def test_opted_out_by_keyword(tether_registry):
            await tether.spawn(boom).wait()

        async def test_raising_callback(tether_registry):
            handle = tether.spawn(anyio.sleep, 0)
            handle.add_done_callback(lambda h: 1 / 0)
            await handle

        async def test_left_open(anyio_backend):
            registry = tether.TaskRegistry(name="left")
            await registry.open()
            registry.spawn(anyio.sleep_forever, name="forever")
            test_left_open.kept = registry

        def test_sync():
            pass
        """
    )
    result = pytester.runpytest_subprocess(*STRICT[:2], "--strict-markers")
    # Regression (issue 19): tether_no_leaks(enabled=False) was ignored.
    result.assert_outcomes(passed=13, errors=7)
    result.stdout.fnmatch_lines(
        [
            "  failure of task 'boom' (spawned at *test_failing.py:16)",
            "  asyncio task 'raw' (wait defined at *, suspended at *)",
            # Decision (issue 19): a raising done-callback is no failure of the task.
            "  exception in a done-callback or hook of task 'sleep' (A done-callback"
            " of task 'sleep' raised; the task is unaffected)",
            # A registry the test opened and left open, on trio too.
            "  TaskRegistry 'left' (left CANCELLING with 1 task(s) spawned; the "
            "event loop's end cancelled what was left)",
        ],
        consecutive=False,
    )


def test_the_plugin_is_inert_unless_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import asyncio

        def test_asks_nothing_of_tether():
            loop = asyncio.new_event_loop()
            loop.close()
        """
    )
    result = pytester.runpytest_subprocess(*STRICT)
    result.assert_outcomes(passed=1)
    collected = result.stdout.lines.index("collected 1 item")
    assert not any("tether" in line for line in result.stdout.lines[collected:])


def test_this_suite_fails_a_failing_assert_inside_a_log_mode_task(
    pytester: pytest.Pytester,
) -> None:
    """Issue 19: an `assert` inside a task of a `log`-mode registry only logged, and
    the test passed. This suite's conftest.py, with the leak check on as in
    pyproject.toml, fails it (and any tether ERROR the test does not assert, and any
    record without the extra fields); a test that asserts its records passes."""
    pytester.makeini(
        "[pytest]\ntether_no_leaks = true\nlog_level = DEBUG\n"
        "filterwarnings = error\nmarkers = anyio: anyio\n"
    )
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        helpers=(Path(__file__).resolve().parent / "helpers.py").read_text()
    )
    pytester.makepyfile(
        test_suite="""
        import logging

        import anyio.lowlevel
        import pytest
        from helpers import tether_records
        from tether import TaskRegistry

        pytestmark = pytest.mark.anyio

        async def body():
            await anyio.lowlevel.checkpoint()
            assert 1 + 1 == 3, "the arithmetic of a background task"

        async def test_a_failing_assert_in_a_task(anyio_backend):
            async with TaskRegistry() as tasks:
                tasks.spawn(body)

        def test_a_record_without_the_fields():
            logging.getLogger("tether").warning("no fields")

        async def test_a_failure_asserted(anyio_backend, caplog):
            async with TaskRegistry() as tasks:
                tasks.spawn(body)
            [record] = tether_records(caplog)
            assert record.getMessage().startswith("Task 'body' of TaskRegistry")
        """
    )
    result = pytester.runpytest_subprocess(*STRICT[:2], "--strict-markers")
    # Failed by the conftest check, and errored at teardown by the leak check.
    result.assert_outcomes(passed=3, failed=4, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*tether logged, during the test's call:",
            "  an unasserted ERROR record: Task 'body' of TaskRegistry 'registry' "
            "failed",
            "*AssertionError: the arithmetic of a background task",
            "  a WARNING record without the extra fields tether_registry and "
            "tether_task: 'no fields'",
        ],
        consecutive=False,
    )
