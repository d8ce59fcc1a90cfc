"""Adopting raw tasks: the running asyncio loop hands every task it creates to tether.

Most raw tasks of a real application are made by code it does not own (a framework's
update check, a client's reconnect callback, a server's protocol callbacks), and
asyncio keeps only weak references to tasks. :func:`adopt_tasks` wraps the loop's
task factory (whatever it was: none, an eager one, uvloop's, a tracing library's) so
that every task the loop creates is also held in a set until it ends, and shows in
:func:`tether.dump`. Nothing else about a task changes: tether adds no callback
but the one that lets go of it, never cancels it, and never reads its result, so
asyncio still reports a failure nobody retrieved ("Task exception was never
retrieved", once, when the task is freed after tether lets go), and never one that
some code retrieves later.

The state of one loop's adoption is reachable only from the loop's task factory
while the adoption is on (so a loop that is dropped frees it), and from a module
set after an undo until the tasks it still holds have ended.

Tasks tether makes itself (registries, gathers) are recognised by their
coroutine's file and left alone: their registry already holds them.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import weakref
from typing import TYPE_CHECKING, Any

from ._default import running_library
from ._dump import Node, await_chain
from ._log import logger
from ._registry import dump_extras
from ._shutdown_log import grouped

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["Adoption", "adopt_tasks", "adopted_nodes"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

#: The source files of tether: a task whose coroutine was defined in one of them is
#: tether's own, held by its registry or gather.
_OWN_FILES = frozenset(
    os.path.join(_PACKAGE_DIR, name)
    for name in os.listdir(_PACKAGE_DIR)
    if name.endswith(".py")
)

_ON_TRIO = (
    "tether.adopt_tasks() does nothing on trio: trio already holds every task in a "
    "nursery, so none can be garbage-collected mid-flight"
)


class _LoopAdoption:
    """One loop's adoption: the tasks held, the factory it wrapped, its users."""

    __slots__ = (
        "__weakref__",
        "factory",
        "held",
        "loop",
        "previous",
        "reported",
        "sites",
        "started",
        "stop",
        "users",
    )

    loop: weakref.ref[asyncio.AbstractEventLoop]
    previous: Any  # the loop's task factory before ours, or None
    held: set[asyncio.Task[Any]]
    users: int
    reported: bool
    started: float
    sites: weakref.WeakKeyDictionary[asyncio.Task[Any], str] | None
    factory: Callable[..., asyncio.Task[Any]]
    stop: Callable[[], None]

    def __init__(
        self, loop: asyncio.AbstractEventLoop, previous: Any, debug: bool
    ) -> None:
        self.loop = weakref.ref(loop)
        self.previous = previous
        self.held = set()
        self.users = 0
        self.reported = False
        self.started = time.monotonic()
        # With debug on: where each adopted task was created.
        self.sites = weakref.WeakKeyDictionary() if debug else None
        self.factory, self.stop = _make_factory(previous, self.held, self.sites)
        # Found through the loop's factory, by adopt_tasks() and undo().
        self.factory.__dict__["_tether_adoption"] = self

    # -- the end of the run -------------------------------------------------------

    def host_ended(self, host: asyncio.Task[Any]) -> None:
        """The task that called adopt_tasks() has ended: what is still held now is
        what the end of the run cancels (asyncio.run cancels every task left)."""
        if self.users == 0:
            return
        pending = [t for t in self.held if not t.done()]

        def ended(task: asyncio.Task[Any]) -> None:
            if self.reported or not task.cancelled():
                return
            self.reported = True
            left = [t for t in pending if not t.done() or t.cancelled()]
            logger.warning(
                "The event loop's run ended with %d adopted task(s) still running "
                "(raw tasks that tether.adopt_tasks() held): %s. They were "
                "cancelled. Tasks spawned into a TaskRegistry would have been "
                "drained before the end",
                len(left),
                grouped(self._label(t) for t in left),
                extra={"tether_registry": None, "tether_task": None},
            )

        for task in pending:
            task.add_done_callback(ended)

    def _label(self, task: asyncio.Task[Any]) -> str:
        site = None if self.sites is None else self.sites.get(task)
        return task.get_name() if site is None else f"{task.get_name()} ({site})"

    # -- tether.dump() ------------------------------------------------------------

    def node(self, now: float) -> Node | None:
        tasks = _snapshot_tasks(self.held)
        if not tasks and self.users == 0:
            return None
        node = Node(
            f"adopted tasks (raw tasks held by tether.adopt_tasks()) for "
            f"{max(0.0, now - self.started):.1f} s: {len(tasks)} running"
        )
        for task in tasks:
            site = None if self.sites is None else self.sites.get(task)
            facts = "RUNNING" + ("" if site is None else f", created at {site}")
            node.children.append(
                Node(
                    f"{task.get_name()} {facts}: suspended at "
                    f"{await_chain(task.get_coro())}"
                )
            )
        return node


#: Every loop adoption that may hold tasks, for tether.dump().
_adoptions: weakref.WeakSet[_LoopAdoption] = weakref.WeakSet()

#: Adoptions undone while they still held tasks: kept until those end.
_undone: set[_LoopAdoption] = set()


def _make_factory(
    previous: Any,
    held: set[asyncio.Task[Any]],
    sites: weakref.WeakKeyDictionary[asyncio.Task[Any], str] | None,
) -> tuple[Callable[..., asyncio.Task[Any]], Callable[[], None]]:
    """The task factory: the previous one (or a plain ``asyncio.Task``), then the
    task is held until it ends; and the function that makes it hold no more. The
    per-task cost of adoption lives here."""
    import asyncio

    new_task: Any = asyncio.Task
    wrapped: Any = previous
    add = held.add
    let_go = held.discard  # a C function as the done-callback: no Python frame
    own = _OWN_FILES
    adopting = True

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        # The common case first: no factory was there, the task is lazy (never
        # done yet), and asyncio passes no keywords (no context given).
        task: asyncio.Task[Any] = (
            (
                new_task(coro, loop=loop, **kwargs)
                if kwargs
                else new_task(coro, loop=loop)
            )
            if wrapped is None
            else wrapped(loop, coro, **kwargs)
        )
        if not adopting:
            return task
        code = getattr(coro, "cr_code", None)
        if code is not None and code.co_filename in own:
            return task  # tether's own: its registry holds it
        if wrapped is None or not task.done():  # an eager factory may have run it
            add(task)
            task.add_done_callback(let_go)
            if sites is not None:
                sites[task] = _creation_site()
        return task

    def stop() -> None:
        nonlocal adopting
        adopting = False

    return factory, stop


def _creation_site() -> str:
    """``file:line`` of the code that created the task: the innermost frame
    outside asyncio, uvloop and tether."""
    import asyncio

    skip = (os.path.dirname(asyncio.__file__), _PACKAGE_DIR)
    # CPython's own accessor (inspect.currentframe() wraps it in one call more).
    frame = sys._getframe(2)  # pyright: ignore[reportPrivateUsage]
    while frame.f_back is not None and frame.f_code.co_filename.startswith(skip):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _snapshot_tasks(held: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """The live tasks of ``held``; another thread may change it (a watchdog's
    ``tether.dump()``), so taken again if it changed meanwhile."""
    while True:
        try:
            return [t for t in list(held) if not t.done()]
        except RuntimeError:  # pragma: no cover - changed size during iteration
            continue


def adopted_nodes(now: float) -> list[Node]:
    """The trees :func:`tether.dump` adds for adopted tasks: one per loop."""
    nodes: list[Node] = []
    for adoption in list(_adoptions):
        node = adoption.node(now)
        if node is not None:
            nodes.append(node)
    return nodes


dump_extras.append(adopted_nodes)


class Adoption:
    """What :func:`tether.adopt_tasks` returns: ``undo()``, or the end of a
    ``with`` block around the call, ends the adoption.

    .. versionadded:: 0.3
    """

    __slots__ = ("_adoption", "_done")

    def __init__(self, adoption: _LoopAdoption | None) -> None:
        self._adoption = adoption  # None: on trio, nothing was done
        self._done = adoption is None

    @property
    def active(self) -> bool:
        """Whether this call still makes the loop hand its tasks to tether."""
        return not self._done

    def undo(self) -> None:
        """End this adoption. Idempotent; never blocks.

        When it was the last one on its loop, the loop's task factory is put back
        exactly as it was, unless some code has set another factory since (that
        one wraps ours: it is left in place, and ours only passes tasks through).
        Tasks adopted so far stay held until they end.
        """
        adoption = self._adoption
        if self._done or adoption is None:
            return
        self._done = True
        adoption.users -= 1
        if adoption.users:
            return
        loop = adoption.loop()
        if loop is not None and loop.get_task_factory() is adoption.factory:
            loop.set_task_factory(adoption.previous)
        else:  # someone wrapped ours: adopt no more, pass tasks through
            adoption.stop()
        adoption.factory.__dict__["_tether_adoption"] = None
        if adoption.held:
            # Nothing on the loop refers to it any more: keep it until its tasks
            # have ended, or they could be collected mid-flight.
            _undone.add(adoption)
            release = functools.partial(_release_undone, adoption)
            for task in list(adoption.held):
                task.add_done_callback(release)

    def __enter__(self) -> Adoption:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.undo()

    def __repr__(self) -> str:
        if self._adoption is None:
            return "<tether.adopt_tasks(): nothing to do on trio>"
        state = "active" if self.active else "undone"
        return f"<tether.adopt_tasks() {state}, holding {len(self._adoption.held)}>"


def _release_undone(adoption: _LoopAdoption, _: object) -> None:
    if all(t.done() for t in adoption.held):
        _undone.discard(adoption)


def adopt_tasks() -> Adoption:
    """Make the running asyncio event loop (uvloop included) hand every task it
    creates, by any code, to tether: a safety net for raw tasks you did not create.

    Call it once, at the top of your async ``main`` (or use it as
    ``with tether.adopt_tasks():``). From then on, each task the loop creates
    (``asyncio.create_task``, ``ensure_future``, ``loop.create_task``, in your code
    or in any library's) is held strongly until it ends, so none can be
    garbage-collected mid-flight; it shows in :func:`tether.dump` under "adopted
    tasks" (with the line that created it when asyncio's debug mode or ``-X dev``
    is on); and if the task that called ``adopt_tasks()`` ends while adopted tasks
    still run, and the end of the run cancels them, one WARNING names them.

    Nothing else about the tasks changes. A failure nobody retrieves is still
    reported by asyncio, once ("Task exception was never retrieved"), and one that
    some code retrieves later never is. Tasks that tether makes itself, and those of
    an ``asyncio.TaskGroup`` or an anyio task group, are held by their owners and
    behave exactly as before. The loop's task factory, if it had one (an eager
    one, a tracing library's), is wrapped, and put back by ``undo()``.

    It adds no drain and no limit: a :class:`~tether.TaskRegistry` is still what
    gives a program a graceful shutdown. Never blocks; not a checkpoint. Calling it
    again on the same loop adds a user of the same adoption; the last ``undo()``
    ends it.

    On trio it does nothing and says so on logger ``"tether"`` (INFO): trio already
    holds every task in a nursery.

    Returns:
        An :class:`~tether.Adoption`; its ``undo()``, or the end of a ``with``
        block, ends the adoption.

    Raises:
        RuntimeError: no event loop runs in this thread.

    .. versionadded:: 0.3
    """
    library = running_library()
    if library == "trio":
        logger.info(_ON_TRIO, extra={"tether_registry": None, "tether_task": None})
        return Adoption(None)
    if library is None:
        raise RuntimeError(
            "tether.adopt_tasks() needs a running asyncio event loop: call it from "
            "async code, at the top of your main: "
            "`async def main(): tether.adopt_tasks(); ...`"
        )
    import asyncio

    loop = asyncio.get_running_loop()
    current = loop.get_task_factory()
    adoption = getattr(current, "_tether_adoption", None)
    if not isinstance(adoption, _LoopAdoption):
        debug = loop.get_debug() or sys.flags.dev_mode
        adoption = _LoopAdoption(loop, current, debug)
        loop.set_task_factory(adoption.factory)
        _adoptions.add(adoption)
        host = asyncio.current_task()
        if host is not None:
            host.add_done_callback(adoption.host_ended)
    adoption.users += 1
    return Adoption(adoption)
