"""The README shows what runs: its first example, its output, and its commands.

The first example is ``docs/examples/readme.py``, which ``tests/test_docs_examples.py``
runs and compares with ``docs/examples/readme.out``, and which mypy --strict and
pyright check in CI (``mypy docs/examples``; pyright's ``include``). Here: the
README shows that file exactly, with no stub body, and the output it quotes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = ROOT / "docs" / "examples"


def test_the_first_example_is_the_example_the_suite_runs() -> None:
    """Issue #22: the first example had ``...`` bodies and no ``asyncio.run``, so it
    did not run and ``mypy --strict`` rejected it (``empty-body``)."""
    first = re.search(r"```python\n(.*?)```", README, re.DOTALL)
    assert first is not None
    assert first.group(1) == (EXAMPLES / "readme.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*\.\.\.$|:\s*\.\.\.$", first.group(1), re.MULTILINE)
    assert "asyncio.run(main(" in first.group(1)


def test_the_readme_quotes_the_examples_output() -> None:
    output = (EXAMPLES / "readme.out").read_text(encoding="utf-8").strip()
    assert f"It prints `{output}`." in README


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    """``.ci/run`` runs the README's test command: the same installs and pytest."""
    command = (
        "python3 -m venv .venv && .venv/bin/pip install -U pip && "
        ".venv/bin/pip install -e '.[trio,uvloop]' --group test && "
        ".venv/bin/python -m pytest"
    )
    assert f"\n{command}\n" in README
    if not (ROOT / ".ci" / "run").exists():
        pytest.skip("an sdist carries no CI script")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "install -q -e '.[trio,uvloop]' --group test &&" in ci
    assert '"$venv/bin/python" -m pytest\n' in ci


def test_the_quick_first_run_installs_the_pytest_plugins_the_config_needs() -> None:
    """Regression: the quick first run installed pytest alone, so once the
    configuration set an option of a plugin of the test group (``timeout`` of
    pytest-timeout), ``--strict-config`` stopped it before any test ran ("Unknown
    config option: timeout", exit status 4)."""
    [quick] = [
        line
        for line in README.splitlines()
        if line.startswith("python3 -m venv") and "tests/test_registry.py" in line
    ]
    installed = quick.split(" && ")[1].split()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    group = re.search(r"^test = \[\n(.*?)^\]", pyproject, re.MULTILINE | re.DOTALL)
    assert group is not None
    plugins = re.findall(r'^\s*"(pytest-[A-Za-z0-9_-]+)', group.group(1), re.MULTILINE)
    # pytest-asyncio is turned off in this suite (tests/test_testing_plugin.py
    # runs it in pytester sessions of their own): the quick run needs it not.
    if '"-p", "no:asyncio"' in pyproject:
        plugins.remove("pytest-asyncio")
    missing = [plugin for plugin in plugins if plugin not in installed]
    assert not missing, f"add {missing} to the README's quick first run"
