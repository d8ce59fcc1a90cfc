"""Run the Read the Docs build of ``.readthedocs.yaml`` here, as Read the Docs would.

    python tools/check_readthedocs.py [--python PYTHON] [--compare docs/_build/html]

Checks that the configuration's steps are the README's docs command (the same pip
installs, the same Sphinx options, only the output folder differs), then runs them
in a fresh virtual environment made by PYTHON (the configuration's Python version;
``python3`` by default): the install job, then the html build job with
``READTHEDOCS_OUTPUT`` set to a temporary folder. With ``--compare``, the pages it
built must be the pages of that folder (built by the README's command). Needs PyYAML
(``pip install --group release``). Exits 1 naming what differs or failed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def readme_docs_command() -> list[list[str]]:
    """The README's docs command, one argv per ``&&`` step."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if "sphinx-build" in line]
    if len(lines) != 1:
        sys.exit(f"README.md: expected one sphinx-build command, found {len(lines)}")
    return [shlex.split(step) for step in lines[0].split("&&")]


def normal(argv: list[str]) -> list[str]:
    """One step, written as Read the Docs runs it: ``python -m pip``, ``python -m
    sphinx``, and the output folder as ``OUT``."""
    program = Path(argv[0]).name
    args = argv[1:]
    if program in {"pip", "sphinx-build"}:
        args = ["-m", "pip" if program == "pip" else "sphinx", *args]
        program = "python"
    if program.startswith("python"):
        program = "python"
    return [program, *["OUT" if a.endswith("/html") else a for a in args]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="python3")
    parser.add_argument("--compare", type=Path)
    options = parser.parse_args()

    config: dict[str, Any] = yaml.safe_load(
        (ROOT / ".readthedocs.yaml").read_text(encoding="utf-8")
    )
    jobs = config["build"]["jobs"]
    install: list[str] = jobs["install"]
    html: list[str] = jobs["build"]["html"]
    if config["sphinx"] != {"configuration": "docs/conf.py", "fail_on_warning": True}:
        sys.exit(f".readthedocs.yaml: unexpected sphinx section {config['sphinx']}")

    # The README creates its venv first; Read the Docs makes its own.
    readme = [normal(step) for step in readme_docs_command()]
    readme = [step for step in readme if step[:3] != ["python", "-m", "venv"]]
    rtd = [normal(shlex.split(step)) for step in [*install, *html]]
    if readme != rtd:
        sys.exit(f"README's docs command:\n  {readme}\n.readthedocs.yaml:\n  {rtd}")
    print("the steps of .readthedocs.yaml are the README's docs command")

    with tempfile.TemporaryDirectory(prefix="tether-rtd-") as tmp:
        venv = Path(tmp, "venv")
        subprocess.run([options.python, "-m", "venv", str(venv)], check=True)
        env = {
            **os.environ,
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            "READTHEDOCS_OUTPUT": str(Path(tmp, "out")),
        }
        for step in [*install, *html]:
            print(f"$ {step}", flush=True)
            output = env["READTHEDOCS_OUTPUT"]
            argv = [a.replace("$READTHEDOCS_OUTPUT", output) for a in shlex.split(step)]
            argv[0] = str(venv / "bin" / argv[0])
            stdin = subprocess.DEVNULL
            subprocess.run(argv, cwd=ROOT, env=env, stdin=stdin, check=True)
        built = Path(tmp, "out", "html")
        pages = {p.relative_to(built).as_posix() for p in built.rglob("*.html")}
        if "index.html" not in pages:
            sys.exit("the Read the Docs build wrote no index.html")
        if options.compare is not None:
            theirs = {
                p.relative_to(options.compare).as_posix()
                for p in options.compare.rglob("*.html")
            }
            if pages != theirs:
                sys.exit(f"pages differ: {sorted(pages ^ theirs)}")
            print(f"the same {len(pages)} pages as {options.compare}")
    python = config["build"]["tools"]["python"]
    print(f"ok: the Read the Docs build (Python {python} there) passes here")


if __name__ == "__main__":
    main()
