"""tether.testing, run in pytester sessions of its own, on asyncio and trio."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

RECIPE = Path(__file__).resolve().parent / "recipes" / "leak_check.py"
RECIPE_ASYNCIO = (
    Path(__file__).resolve().parent / "recipes" / "leak_check_pytest_asyncio.py"
)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
CONFTEST = Path(__file__).resolve().parent / "conftest.py"

# anyio's plugin alone (pytest-asyncio, installed for the tests below, stays off).
STRICT = (
    "-p",
    "anyio",
    "-p",
    "no:asyncio",
    "-W",
    "error",
    "--strict-markers",
    "--strict-config",
)


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
    result = pytester.runpytest_subprocess(*STRICT[:4], "--strict-markers")
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
    result = pytester.runpytest_subprocess(*STRICT[:4], "--strict-markers")
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


# -- under pytest-asyncio --------------------------------------------------------------

#: Tests as a pytest-asyncio project writes them. ``MARK`` is
#: ``@pytest.mark.asyncio(loop_scope=...)`` in strict mode and nothing in auto
#: mode (where the ini options set the loop scopes); ``FIXTURE`` is
#: ``pytest_asyncio.fixture(loop_scope=...)`` in strict mode and ``pytest.fixture``
#: in auto mode.
ASYNCIO_SUITE = """
import asyncio

import pytest
import pytest_asyncio

import tether

LOOPS = []


async def loop_of_task():
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


async def fetch(url):
    await asyncio.sleep(0)
    return f"fetched {url}"


class Client:
    def __init__(self):
        self.fetched = []

    async def start(self):
        await asyncio.sleep(0)
        return self

    def prefetch(self, url):
        return tether.spawn(fetch, url, name="prefetch")


@FIXTURE
async def client(tether_registry):
    return await Client().start()


MARK
@pytest.mark.tether_no_leaks
async def test_the_registry_is_bound_and_runs_in_the_tests_loop(tether_registry):
    loop = asyncio.get_running_loop()
    LOOPS.append(loop)
    assert tether.current_registry() is tether_registry
    assert await tether.spawn(loop_of_task) is loop


MARK
@pytest.mark.tether_no_leaks
async def test_a_fixture_of_the_project_spawns_into_it(client, tether_registry):
    LOOPS.append(asyncio.get_running_loop())
    handle = client.prefetch("/a")
    assert list(tether_registry) == [handle]
    assert await handle == "fetched /a"


MARK
@pytest.mark.tether_no_leaks
async def test_leaks_a_raw_task():
    test_leaks_a_raw_task.task = asyncio.create_task(
        asyncio.Event().wait(), name="raw poller"
    )


MARK
@pytest.mark.tether_no_leaks
async def test_leaks_a_registry_task(tether_registry):
    tether.spawn(asyncio.sleep, 3600, name="registry poller")


MARK
@pytest.mark.tether_no_leaks
async def test_leaks_a_task_of_the_default_registry():
    tether.spawn(asyncio.sleep, 3600, name="library poller")


MARK
@pytest.mark.tether_no_leaks(allow=["raw*"])
async def test_allowed_and_awaited_tasks_pass():
    LOOPS.append(asyncio.get_running_loop())
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    test_allowed_and_awaited_tasks_pass.task = asyncio.create_task(
        asyncio.Event().wait(), name="raw but allowed"
    )


def test_a_sync_test_is_told_what_to_add(tether_registry):
    pass


def test_the_loops_are_as_the_scope_says():
    assert len(LOOPS) == 3
    assert len(set(LOOPS)) == (1 if SCOPE == "module" else 3)
"""


def asyncio_suite(mode: str, scope: str) -> tuple[str, str]:
    """The ini file and the test module of ``ASYNCIO_SUITE`` for one cell."""
    default = scope if mode == "auto" else "function"
    ini = (
        "[pytest]\n"
        f"asyncio_mode = {mode}\n"
        f"asyncio_default_fixture_loop_scope = {default}\n"
        f"asyncio_default_test_loop_scope = {default}\n"
        "filterwarnings = error\n"
    )
    if mode == "strict":
        mark = f'@pytest.mark.asyncio(loop_scope="{scope}")'
        fixture = f'@pytest_asyncio.fixture(loop_scope="{scope}")'
    else:
        mark, fixture = "", "@pytest.fixture"
    source = (
        ASYNCIO_SUITE.replace("\nMARK\n", f"\n{mark}\n")
        .replace("@FIXTURE", fixture)
        .replace("SCOPE", repr(scope))
    )
    return ini, source


@pytest.mark.parametrize("scope", ["function", "module"])
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_under_pytest_asyncio_the_fixture_works_and_the_check_sees_raw_tasks(
    pytester: pytest.Pytester, mode: str, scope: str
) -> None:
    """Issue 21 item 3: under pytest-asyncio, tether_registry failed ("requested an
    async fixture ... with no plugin or hook that handled it") and the leak check
    passed a test that left a raw task pending. In strict and auto mode, at the
    function and the module loop scope: the registry runs in the test's loop, a
    project's own async fixture spawns into it, and each leak errors by name;
    pytest-asyncio's own tasks are never named."""
    ini, source = asyncio_suite(mode, scope)
    pytester.makeini(ini)
    pytester.makepyfile(test_suite=source)
    result = pytester.runpytest_subprocess("--strict-markers", "--strict-config")
    result.assert_outcomes(passed=7, errors=4)
    lines = result.stdout.lines
    lines = lines[: lines.index(next(x for x in lines if "short test summary" in x))]
    found = [line for line in lines if line.startswith("  ")]
    assert [line.split(" (", 1)[0] for line in found] == [
        "  asyncio task 'raw poller'",
        "  task 'registry poller'",
        "  task of the default registry 'library poller'",
    ]
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_raw_task*",
            "  asyncio task 'raw poller' (wait defined at *locks.py:*, suspended at "
            "*wait (*locks.py:*))",
            "A raw asyncio task: await it before the test ends (after task.cancel() "
            "if it would run on), or spawn it with tether.spawn() so that a registry "
            "owns it",
            "*ERROR at teardown of test_leaks_a_registry_task*",
            "  task 'registry poller' (spawned at *test_suite.py:*)",
            "*ERROR at setup of test_a_sync_test_is_told_what_to_add*",
            "tether_registry is opened in the test's event loop, and this test has "
            "none: make it an async test run by anyio's pytest plugin "
            "(@pytest.mark.anyio) or by pytest-asyncio (@pytest.mark.asyncio, or "
            "asyncio_mode = auto)",
        ],
        consecutive=False,
    )


def test_anyio_tests_still_pass_beside_pytest_asyncio_in_strict_mode(
    pytester: pytest.Pytester,
) -> None:
    """With pytest-asyncio installed and active (strict mode, its default), the
    anyio tests of the same session keep their fixture and leak check, on asyncio
    and trio, beside a pytest-asyncio test."""
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_recipe=RECIPE.read_text("utf-8"))
    pytester.makepyfile(
        test_beside="""
        import asyncio
        import pytest
        import tether

        @pytest.mark.asyncio
        @pytest.mark.tether_no_leaks
        async def test_under_pytest_asyncio(tether_registry):
            assert await tether.spawn(asyncio.sleep, 0, "done") == "done"
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "anyio", "--strict-markers", "--strict-config", "-v"
    )
    result.assert_outcomes(passed=7, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*test_under_pytest_asyncio PASSED*",
            "*test_clean?asyncio? PASSED*",
            "*test_clean?trio? PASSED*",
            "*test_leaks_a_task?trio? ERROR*",
        ],
        consecutive=False,
    )


def test_the_pytest_asyncio_recipe_errors_as_the_testing_page_shows(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    pytester.makepyfile(test_recipe=RECIPE_ASYNCIO.read_text("utf-8"))
    result = pytester.runpytest_subprocess("--strict-markers", "--strict-config")
    result.assert_outcomes(passed=3, errors=1)
    lines = result.stdout.lines
    lines = lines[: lines.index(next(x for x in lines if "short test summary" in x))]
    # The error the testing page shows is this run's, but for asyncio's folder and
    # its line numbers, which change with Python's version.
    shown = DOCS.read_text("utf-8").split("```text\n")[2].split("```", 1)[0]
    shown = re.sub(r"\.\.\.(/asyncio/locks\.py:)\d+", r"*\1*", shown)
    shown = shown.replace("Event.wait", "*wait")  # no co_qualname on Python 3.10
    expected = [text.strip("_ ") for text in shown.splitlines()]
    printed = [text.strip("_ ") for text in lines]
    start = printed.index(expected[0])
    assert len(printed) - start >= len(expected) == 5
    for want, got in zip(expected, printed[start:], strict=False):
        assert fnmatch.fnmatchcase(got, want.replace("[", "[[]")), (want, got)
