"""What ``import tether`` adds over ``import anyio``, in fresh interpreters.

Two measurements, interleaved run by run, median of each:

* ``delta``: one fresh interpreter times ``import anyio`` and then ``import tether``
  with ``time.perf_counter_ns()``; the second figure is what tether adds once anyio is
  loaded (the contract's figure). It also lists the backend modules tether pulled in.
* ``wall``: the wall time of ``python -c "import anyio"`` versus
  ``python -c "import anyio, tether"`` (interpreter startup included, so noisier).

Every interpreter runs with ``PYTHONPYCACHEPREFIX`` set to a temporary directory and
without ``PYTHONDONTWRITEBYTECODE``, and a first run of each is discarded: bytecode is
compiled once, then read from that cache, as for an installed wheel. (With
``PYTHONDONTWRITEBYTECODE=1`` and an editable install, every run would compile tether
from source while anyio loads the bytecode pip wrote: that doubles tether's figure.)
The repository's ``__pycache__`` folders are never written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import median

_DELTA_CODE = """
import json, sys, time
before = set(sys.modules)
t0 = time.perf_counter_ns()
import anyio
t1 = time.perf_counter_ns()
mid = set(sys.modules)
import tether
t2 = time.perf_counter_ns()
new = sorted(set(sys.modules) - mid)
print(json.dumps({"anyio_ns": t1 - t0, "tether_ns": t2 - t1, "new": new}))
"""

#: Modules whose eager import the contract rules out ("backend modules are imported on
#: first use"), reported when ``import tether`` pulls them in.
NOTABLE = (
    "asyncio",
    "trio",
    "uvloop",
    "anyio._backends._asyncio",
    "anyio._backends._trio",
)


_ENV: dict[str, str] = {}


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    )


def _heaviest(new_modules: set[str], count: int = 8) -> list[tuple[str, float]]:
    """The modules ``import tether`` adds with the largest self time, from one
    ``-X importtime`` run: where an import-time regression comes from.
    """
    done = _python("import anyio; import tether", "-X", "importtime")
    self_us: dict[str, int] = {}
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            self_us[parts[2].strip()] = int(parts[0])
    ranked = sorted((us, m) for m, us in self_us.items() if m in new_modules)
    return [(module, us / 1000) for us, module in reversed(ranked[-count:])]


def _wall(code: str) -> int:
    t0 = time.perf_counter_ns()
    _python(code)
    return time.perf_counter_ns() - t0


def measure(runs: int) -> dict[str, Any]:
    """Return the import figures, or ``{"skipped": reason}``."""
    with tempfile.TemporaryDirectory(prefix="tether-bench-pycache-") as cache:
        _ENV.clear()
        _ENV.update(os.environ)
        _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        _ENV["PYTHONPYCACHEPREFIX"] = cache
        return _measure(runs)


def _measure(runs: int) -> dict[str, Any]:
    try:
        _python("import tether")
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr.strip().splitlines() or ["?"])[-1]
        return {"skipped": f"tether: not importable yet ({last})"}
    _python(_DELTA_CODE)  # warm the bytecode caches
    _python("import anyio, tether")
    delta: list[float] = []
    anyio_alone: list[float] = []
    wall_anyio: list[float] = []
    wall_both: list[float] = []
    new_modules: list[str] = []
    for _ in range(runs):
        record = json.loads(_python(_DELTA_CODE).stdout)
        anyio_alone.append(record["anyio_ns"] / 1e6)
        delta.append(record["tether_ns"] / 1e6)
        new_modules = record["new"]
        wall_anyio.append(_wall("import anyio") / 1e6)
        wall_both.append(_wall("import anyio, tether") / 1e6)
    return {
        "runs": runs,
        "anyio_ms": median(anyio_alone),
        "tether_after_anyio_ms": median(delta),
        "wall_anyio_ms": median(wall_anyio),
        "wall_anyio_tether_ms": median(wall_both),
        "wall_delta_ms": median(wall_both) - median(wall_anyio),
        "modules_added": len(new_modules),
        "notable_modules_added": [m for m in new_modules if m in NOTABLE],
        "heaviest_self_ms": _heaviest(set(new_modules)),
    }
