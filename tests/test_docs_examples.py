"""The examples of the docs, run: each output the docs show is the output of a run.

``docs/examples/NAME.py`` runs as a script and its standard output must equal
``docs/examples/NAME.out``, byte for byte. An ``.out`` file that starts with
``$ COMMAND`` is a console transcript instead: COMMAND runs (``tether`` as
``python -m tether``) in ``docs/examples/NAME/`` if that folder exists, and the
transcript is the command line, then its standard output, then its standard error.
The docs include both files with ``literalinclude``, so they show what runs here.

Every example prints only what is the same on every run and backend: steps, never
times. Each runs in a fresh interpreter, as a reader would run it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"
OUTPUTS = sorted(EXAMPLES.glob("*.out"))


def run(output: Path) -> tuple[str, str]:
    """What the example of ``output`` prints now, and what the docs say it prints."""
    expected = output.read_text(encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "80"}
    env.pop("PYTHONWARNINGS", None)
    if expected.startswith("$ "):
        command = expected.splitlines()[0][2:]
        argv = shlex.split(command)
        if argv[0] == "tether":
            argv = [sys.executable, "-m", "tether", *argv[1:]]
        folder = EXAMPLES / output.stem
        done = subprocess.run(
            argv,
            cwd=folder if folder.is_dir() else EXAMPLES,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,  # a guard against a hang, not a timing assertion
        )
        return f"$ {command}\n{done.stdout}{done.stderr}", expected
    script = output.with_suffix(".py")
    done = subprocess.run(
        [sys.executable, "-W", "error", script.name],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,  # a guard against a hang, not a timing assertion
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout, expected


@pytest.mark.parametrize("output", OUTPUTS, ids=[path.stem for path in OUTPUTS])
def test_the_docs_show_what_the_example_prints(output: Path) -> None:
    actual, expected = run(output)
    assert actual == expected


def test_every_example_script_has_its_output() -> None:
    scripts = {path.stem for path in EXAMPLES.glob("*.py")}
    assert scripts <= {path.stem for path in OUTPUTS}


def test_every_example_is_in_the_docs_with_its_output() -> None:
    pages = "".join(page.read_text(encoding="utf-8") for page in DOCS.glob("*.md"))
    included = set(re.findall(r"literalinclude\}\s+examples/(\S+)", pages))
    for output in OUTPUTS:
        assert output.name in included, f"no page shows {output.name}"
