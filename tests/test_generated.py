"""The generated overloads in _gather.py (run_all, settle_all), _registry.py
(TaskRegistry.start, and the spawn forms of TaskRegistry and Pool), _spawn.py
(tether.spawn) and _streams.py (amap), and the protocols of _startable.py, are what
tools/gen_overloads.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "gen_overloads.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_overloads", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_overloads = _load_script()
check: Callable[[Path], str | None] = gen_overloads.check
generate: Callable[..., str] = gen_overloads.generate
target: Path = gen_overloads.TARGET
registry: Path = gen_overloads.REGISTRY
startable: Path = gen_overloads.STARTABLE
streams: Path = gen_overloads.STREAMS
spawn: Path = gen_overloads.SPAWN


def _problem_with(tmp_path: Path, source: str, edited: str, name: str) -> str:
    """What ``check`` says of ``edited``, a hand edit of the generated ``source``,
    written as ``name``; fails the test if the edit changed nothing or went
    unseen."""
    assert edited != source
    copy = tmp_path / name
    copy.write_text(edited, encoding="utf-8")
    problem = check(copy)
    assert problem is not None
    return problem


def test_checked_in_overloads_are_current() -> None:
    for path in (target, registry, startable, streams, spawn):
        problem = check(path)
        assert problem is None, problem


def test_check_sees_a_hand_edit(tmp_path: Path) -> None:
    # From what the script writes, so this holds even when the file is stale.
    source = generate(target.read_text(encoding="utf-8"))
    edited = source.replace(
        ") -> tuple[T1, T2, T3]: ...", ") -> tuple[T1, T3, T2]: ..."
    )
    problem = _problem_with(tmp_path, source, edited, "_gather.py")
    assert "is out of date" in problem
    assert "python tools/gen_overloads.py" in problem


def test_check_sees_a_hand_edit_of_the_start_ladder(tmp_path: Path) -> None:
    regions: object = gen_overloads.REGISTRY_REGIONS
    source = generate(registry.read_text(encoding="utf-8"), regions)
    edited = source.replace(
        "fn: Startable2[T, A1, A2],\n        a1: A1,\n        a2: A2,",
        "fn: Startable2[T, A1, A2],\n        a1: A2,\n        a2: A1,",
    )
    problem = _problem_with(tmp_path, source, edited, "_registry.py")
    assert "is out of date" in problem


def test_try_spawn_takes_what_spawn_takes(tmp_path: Path) -> None:
    """spawn's and try_spawn's overloads come from one list of options: a hand
    edit of try_spawn's (an option spawn does not have) is seen."""
    regions: object = gen_overloads.REGISTRY_REGIONS
    source = generate(registry.read_text(encoding="utf-8"), regions)
    edited = source.replace(
        "        timeout: float | None = None,\n    ) -> Handle[T] | None: ...",
        "        timeout: float | None = None,\n        extra: int = 0,\n"
        "    ) -> Handle[T] | None: ...",
    )
    problem = _problem_with(tmp_path, source, edited, "_registry.py")
    assert "-        extra: int = 0," in problem


def test_every_spawn_form_of_the_registry_has_its_pool_form_from_one_row() -> None:
    """Pool's spawn forms are generated from the rows of the registry's: a form
    or an option added to the table reaches both."""
    regions: dict[str, object] = gen_overloads.REGISTRY_REGIONS
    forms: dict[str, object] = gen_overloads.SPAWN_FORMS
    for form in forms:
        pool_region = f"Pool.{form.removeprefix('spawn_')}"
        assert pool_region in regions, pool_region
        assert form in regions or f"{form} overloads" in regions, form


def test_check_sees_a_hand_edit_of_a_pool_s_overloads(tmp_path: Path) -> None:
    regions: object = gen_overloads.REGISTRY_REGIONS
    source = generate(registry.read_text(encoding="utf-8"), regions)
    begin = source.index("(Pool.when_room)")
    # The pool's spawn_when_room without its timeout: an option forgotten.
    edited = source[:begin] + source[begin:].replace(
        "        timeout: float | None = None,\n    ) -> Handle[T]: ...",
        "    ) -> Handle[T]: ...",
        1,
    )
    problem = _problem_with(tmp_path, source, edited, "_registry.py")
    assert "+        timeout: float | None = None," in problem


def test_tether_spawn_takes_what_a_registry_s_spawn_takes_but_context(
    tmp_path: Path,
) -> None:
    """``tether.spawn``'s overloads were written by hand beside the generated ones
    of the registry and its pools; they come from the same options now, but
    ``context`` (the ambient spawn runs in a copy of the caller's context), and a
    hand edit is seen."""
    options: tuple[str, ...] = gen_overloads.SPAWN_OPTIONS
    ambient: tuple[str, ...] = gen_overloads.AMBIENT_OPTIONS
    assert [o for o in options if not o.startswith("context:")] == list(ambient)
    regions: object = gen_overloads.SPAWN_REGIONS
    source = generate(spawn.read_text(encoding="utf-8"), regions)
    assert "\ndef spawn(\n    fn: Callable[[Unpack[PosArgsT]]" in source
    edited = source.replace("    daemon: bool = False,\n", "", 1)
    problem = _problem_with(tmp_path, source, edited, "_spawn.py")
    assert "+    daemon: bool = False," in problem
