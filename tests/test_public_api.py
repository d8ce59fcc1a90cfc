"""The public surface: names, docstrings, the handle's shape, the exception MRO."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import cast

import anyio
import pytest

import tether
from tether import Handle, RegistryState, Status, TaskCancelled, TaskNotFinished

API_DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"

# The special methods that are public surface: `async with` and `await`.
PROTOCOL_METHODS = frozenset({"__aenter__", "__aexit__", "__await__"})

# Known gaps, each reported; strict, so documenting one makes its test fail until
# its entry is removed here.
UNDOCUMENTED: dict[str, str] = {}


def public_objects() -> list[tuple[str, object]]:
    return [(name, getattr(tether, name)) for name in tether.__all__]


def own_docstring(obj: object) -> str:
    """The docstring ``obj`` itself carries: unlike ``inspect.getdoc``, never one
    inherited from a base class (or, for a type alias, from its type)."""
    doc = obj.__doc__ if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return (doc or "").strip()


def tether_members(cls: type) -> dict[str, object]:
    """The public methods and properties of ``cls`` that tether defines, on ``cls``
    or on any of its bases, and the protocol methods among them."""
    members: dict[str, object] = {}
    for name in dir(cls):
        if name.startswith("_") and name not in PROTOCOL_METHODS:
            continue
        owner = next((base for base in cls.__mro__ if name in vars(base)), None)
        if owner is None or owner.__module__.partition(".")[0] != "tether":
            continue  # object, Generic, Enum, the exception bases, a metaclass
        member: object = vars(owner)[name]
        if isinstance(member, (staticmethod, classmethod)):
            member = cast("object", member.__func__)
        if isinstance(member, property) or callable(member):
            members[name] = member
    return members


def public_members() -> list[tuple[str, object]]:
    return [
        (f"{name}.{attr}", member)
        for name, obj in public_objects()
        if isinstance(obj, type)
        for attr, member in sorted(tether_members(obj).items())
    ]


def test_all_is_sorted_and_complete() -> None:
    assert tether.__all__ == sorted(tether.__all__)
    public = {
        name
        for name, value in vars(tether).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(tether.__all__)


@pytest.mark.parametrize("name", tether.__all__)
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(tether, name)
    if inspect.isclass(obj) or inspect.isroutine(obj):
        doc = own_docstring(obj)
        assert doc, name
        if dataclasses.is_dataclass(obj):  # not the signature dataclass writes
            assert not doc.startswith(f"{name}("), name
    else:
        # A type alias cannot carry a docstring: the API page documents it.
        assert f".. autodata:: tether.{name}\n" in API_DOCS.read_text("utf-8"), name


@pytest.mark.parametrize(
    ("name", "member"),
    [
        pytest.param(
            name,
            member,
            id=name,
            marks=[pytest.mark.xfail(reason=UNDOCUMENTED[name], strict=True)]
            if name in UNDOCUMENTED
            else [],
        )
        for name, member in public_members()
    ],
)
def test_every_public_method_and_property_has_a_docstring(
    name: str, member: object
) -> None:
    assert own_docstring(member), name


def test_methods_from_tether_bases_are_checked_and_foreign_ones_are_not() -> None:
    class Base:
        def inherited(self) -> None:
            """Documented."""

        @property
        def prop(self) -> int:
            return 1

        def _private(self) -> None:
            pass

    class Child(Base, Exception):
        async def __aenter__(self) -> Child:
            return self

        def __repr__(self) -> str:
            return "Child()"

    Base.__module__ = Child.__module__ = "tether._example"
    members = tether_members(Child)
    assert sorted(members) == ["__aenter__", "inherited", "prop"]
    assert [name for name, m in members.items() if not own_docstring(m)] == [
        "__aenter__",
        "prop",
    ]


def test_handle_is_final_slotted_and_not_constructible() -> None:
    assert getattr(Handle, "__final__", False) is True
    assert "__slots__" in vars(Handle)
    assert "__dict__" not in dir(Handle)  # no base class adds an instance dict
    with pytest.raises(TypeError, match=r"made by spawning: use TaskRegistry\.spawn"):
        Handle()


def test_the_handle_is_named_apart_from_anyio_and_asyncio_tasks() -> None:
    """A user importing tether beside anyio (whose task handle is
    ``anyio.TaskHandle``) or asyncio (``asyncio.Task``) never meets two classes of
    the same name: tether's is ``Handle``, exported under that name only."""
    assert "TaskHandle" not in tether.__all__
    assert "Task" not in tether.__all__
    assert [name for name, obj in public_objects() if obj is Handle] == ["Handle"]
    assert (Handle.__name__, Handle.__qualname__) == ("Handle", "Handle")
    assert Handle is not getattr(anyio, "TaskHandle", None)


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
    # Tracebacks name them where users import them from: tether.NoRegistry.
    for name in ("NoRegistry", "RegistryClosed", "RegistryFull", "TetherError"):
        assert getattr(tether, name).__module__ == "tether"
    for exc in (TaskCancelled, TaskNotFinished):
        assert exc.__module__ == "tether"


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
    fields = [
        "spawned",
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "restarts",
        "dropped",
    ]
    assert list(tether.RegistryStatistics.__dataclass_fields__) == fields
    assert tether.RegistryStatistics.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_spawn_signatures_take_fn_then_args_with_keyword_only_options() -> None:
    for fn in (
        tether.TaskRegistry.spawn,
        tether.TaskRegistry.spawn_when_free,
        tether.TaskRegistry.spawn_when_room,
        tether.Pool.spawn,
        tether.Pool.spawn_when_free,
        tether.Pool.spawn_when_room,
        tether.TaskRegistry.spawn_service,
        tether.TaskRegistry.start,
        tether.spawn,
    ):
        params = inspect.signature(fn).parameters
        assert params["fn"].kind is inspect.Parameter.POSITIONAL_ONLY
        assert params["args"].kind is inspect.Parameter.VAR_POSITIONAL
        assert params["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(tether.TaskRegistry.spawn_when_free)
    assert inspect.iscoroutinefunction(tether.TaskRegistry.start)
    assert inspect.iscoroutinefunction(tether.TaskRegistry.spawn_when_room)
    assert inspect.iscoroutinefunction(tether.Pool.spawn_when_room)
    assert not inspect.iscoroutinefunction(tether.Pool.spawn)
    assert not inspect.iscoroutinefunction(tether.TaskRegistry.spawn_service)
    assert not inspect.iscoroutinefunction(tether.TaskRegistry.spawn)
    assert not inspect.iscoroutinefunction(tether.spawn)


@pytest.mark.parametrize(
    "form",
    ["spawn", "try_spawn", "spawn_when_free", "spawn_when_room", "spawn_threadsafe"],
)
def test_a_pool_s_spawn_forms_take_what_the_registry_s_take(form: str) -> None:
    """The overloads of both come from one table (tools/gen_overloads.py); the
    implementations' signatures are checked here, docstrings apart."""
    pool_form = getattr(tether.Pool, form)
    registry_form = getattr(tether.TaskRegistry, form)
    assert inspect.signature(pool_form) == inspect.signature(registry_form)
    assert inspect.iscoroutinefunction(pool_form) is inspect.iscoroutinefunction(
        registry_form
    )


def test_stop_is_the_type_of_every_spawn_form_s_stop() -> None:
    assert typing.get_args(tether.Stop) == ("on-close", "after-drain")
    for fn in (
        tether.TaskRegistry.spawn,
        tether.TaskRegistry.spawn_threadsafe,
        tether.Pool.try_spawn,
        tether.spawn,
    ):
        assert inspect.signature(fn).parameters["stop"].annotation == "Stop | None"
