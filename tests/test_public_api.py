"""The public surface: names, docstrings, the handle's shape, the exception MRO."""

from __future__ import annotations

import enum
import inspect

import anyio
import pytest

import tether
from tether import Handle, RegistryState, Status, TaskCancelled, TaskNotFinished


def public_objects() -> list[tuple[str, object]]:
    return [(name, getattr(tether, name)) for name in tether.__all__]


def test_all_is_sorted_and_complete() -> None:
    assert tether.__all__ == sorted(tether.__all__)
    for name, obj in public_objects():
        assert obj is not None, name
    assert "TaskHandle" not in tether.__all__  # anyio.TaskHandle must stay distinct
    assert "Task" not in tether.__all__


@pytest.mark.parametrize("name", tether.__all__)
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(tether, name)
    if name == "OnError":
        return  # a type alias: documented in the docs, it cannot carry a docstring
    assert inspect.getdoc(obj), name
    if inspect.isclass(obj) and not issubclass(obj, (BaseException, enum.Enum)):
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            if callable(member) or isinstance(member, property):
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_entering_and_leaving_a_registry_are_documented() -> None:
    assert inspect.getdoc(tether.TaskRegistry.__aenter__)
    assert inspect.getdoc(tether.TaskRegistry.__aexit__)


def test_handle_is_final_slotted_and_not_constructible() -> None:
    assert getattr(Handle, "__final__", False) is True
    assert "__slots__" in vars(Handle)
    assert "__dict__" not in dir(Handle)  # no base class adds an instance dict
    with pytest.raises(TypeError, match=r"made by spawning: use TaskRegistry\.spawn"):
        Handle()
    assert Handle.__name__ not in {"TaskHandle", "Task"}


@pytest.mark.anyio
async def test_a_handle_has_no_instance_dict() -> None:
    async def noop() -> None:
        pass

    async with tether.TaskRegistry() as tasks:
        handle = tasks.spawn(noop)
        with pytest.raises(AttributeError):
            handle.extra = 1  # type: ignore[attr-defined]  # __slots__ on purpose
        await handle


def test_exception_hierarchy() -> None:
    for name in ("NoRegistry", "RegistryClosed", "RegistryFull"):
        exc = getattr(tether, name)
        assert issubclass(exc, tether.TetherError)
    assert issubclass(tether.TetherError, Exception)
    assert issubclass(TaskCancelled, tether.TetherError)
    assert issubclass(TaskCancelled, anyio.TaskCancelled)
    assert issubclass(TaskCancelled, anyio.TaskFailed)
    assert issubclass(TaskNotFinished, tether.TetherError)
    assert issubclass(TaskNotFinished, anyio.TaskNotFinished)
    assert not issubclass(TaskNotFinished, anyio.TaskFailed)
    assert TaskCancelled.__mro__[:3] == (
        TaskCancelled,
        tether.TetherError,
        anyio.TaskCancelled,
    )
    for exc in (TaskCancelled, TaskNotFinished):
        assert exc.__module__ == "tether._exceptions"


def test_enums_and_records() -> None:
    assert [s.name for s in Status] == [
        "QUEUED",
        "RUNNING",
        "CANCELLING",
        "FINISHED",
        "FAILED",
        "CANCELLED",
    ]
    assert [s.name for s in RegistryState] == [
        "NEW",
        "OPEN",
        "DRAINING",
        "CANCELLING",
        "CLOSED",
    ]
    fields = ["spawned", "queued", "running", "succeeded", "failed", "cancelled"]
    assert list(tether.RegistryStatistics.__dataclass_fields__) == fields
    assert tether.RegistryStatistics.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_spawn_signatures_take_fn_then_args_with_keyword_only_options() -> None:
    for fn in (
        tether.TaskRegistry.spawn,
        tether.TaskRegistry.spawn_when_free,
        tether.spawn,
    ):
        params = inspect.signature(fn).parameters
        assert params["fn"].kind is inspect.Parameter.POSITIONAL_ONLY
        assert params["args"].kind is inspect.Parameter.VAR_POSITIONAL
        assert params["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(tether.TaskRegistry.spawn_when_free)
    assert not inspect.iscoroutinefunction(tether.TaskRegistry.spawn)
    assert not inspect.iscoroutinefunction(tether.spawn)
