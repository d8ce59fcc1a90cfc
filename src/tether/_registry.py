# mypy: disable-error-code="overload-cannot-match"
"""TaskRegistry: the owner that holds every task it spawns until the task ends.

The class reads in the order of a registry's life: making it, spawning (the hot
path), a task's run, the controls, introspection, then entering and closing. It
owns four parts, each with its own state: the backend (:mod:`tether._backend`,
chosen on entry), the slots (:mod:`tether._slots`, only with a ``limit``), the
error policy (:mod:`tether._policy`) and what it says while it closes
(:mod:`tether._shutdown_log`). Handles talk back to it through the small
:class:`~tether._handle.Owner` protocol.

One door in: every public spawn form checks its arguments and the registry's
state once, then calls :meth:`TaskRegistry._spawn_task`. One end: every task,
run or dropped from the queue, ends in :meth:`TaskRegistry._end`; how a task
that raised has ended is the backend seam's rule,
:func:`~tether._backend.leave_scope`, which the gather engine follows too.

The hot path is written for speed: one handle, one backend task and one cancel
scope per task, no per-task event until somebody waits on an unfinished task, and
what few tasks need (a timeout, done-callbacks, hooks, a service's restarts) in one
:class:`~tether._handle.Annex` that the others never allocate.
"""

from __future__ import annotations

import enum
import math
import sys
import time
from contextvars import Context, Token, copy_context
from dataclasses import dataclass
from threading import get_ident
from types import FunctionType, MappingProxyType, TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    TypeAlias,
    TypeVar,
    cast,
    overload,
)
from weakref import ref

import anyio

if sys.version_info >= (3, 11):  # typing's final sets __final__ from 3.11 on
    from typing import Self, TypeVarTuple, Unpack, final
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import Self, TypeVarTuple, Unpack, final

from ._backend import Ending, ki_protected, leave_scope
from ._calls import (
    CO_COROUTINE,
    arguments_misfit,
    check_callable_with,
    check_spawn_options,
    checked_coroutine,
    close_if_coroutine,
    coroutine_from,
    describe,
    is_async_callable,
    name_of,
    refuse_ambiguous_options,
    refuse_if_coroutine,
    refuse_keywords,
    spawn_site,
)
from ._checks import (
    check_choice,
    check_count,
    check_flag,
    check_name,
    check_seconds,
)
from ._context import Bound, bound
from ._dump import Node, await_chain, draw, gather_roots, gathers_under
from ._exceptions import RegistryClosed
from ._handle import (
    CANCELLED,
    CANCELLING,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    UNSEEN,
    Annex,
    Handle,
    call_hook,
)
from ._hooks import Hooks, check_hooks
from ._log import INFO, logger
from ._loop import current_backend
from ._policy import ErrorPolicy, OnError, OnErrorMode, plain_outcome
from ._services import (
    Restart,
    RestartPlan,
    TaskStatus,
    supervise,
)
from ._shutdown_log import STILL_WAITING_EVERY, ShutdownLog, warn_left_open
from ._slots import Slots

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Collection, Coroutine, Iterable, Iterator

    # At run time anyio.lowlevel is read as an attribute of anyio, which imports it
    # on first use (anyio 4.16; earlier ones import it with the package).
    import anyio.lowlevel  # noqa: TC004

    from ._backend import Backend, Event, Host, Scope
    from ._handle import Status
    from ._startable import (
        A1,
        A2,
        A3,
        A4,
        A5,
        EitherStartable0,
        EitherStartable1,
        EitherStartable2,
        EitherStartable3,
        EitherStartable4,
        EitherStartable5,
        Startable0,
        Startable1,
        Startable2,
        Startable3,
        Startable4,
        Startable5,
        TrioStartable0,
        TrioStartable1,
        TrioStartable2,
        TrioStartable3,
        TrioStartable4,
        TrioStartable5,
    )

__all__ = [
    "OnError",
    "Pool",
    "RegistryState",
    "RegistryStatistics",
    "Stop",
    "TaskRegistry",
]

T = TypeVar("T")
R = TypeVar("R")
PosArgsT = TypeVarTuple("PosArgsT")

_new_handle = object.__new__


class _OpenRegistries:
    """Every open registry, for :func:`tether.dump` and the leak check: weak
    references by ``id``, which cost an open and close a third of a ``WeakSet``'s
    (issue #27 item 4). A registry leaves as it closes, or in ``__del__`` if it is
    collected open, so an ``id`` is never taken for another registry's."""

    __slots__ = ("refs",)

    def __init__(self) -> None:
        self.refs: dict[int, ref[TaskRegistry]] = {}

    def add(self, registry: TaskRegistry) -> None:
        self.refs[id(registry)] = ref(registry)

    def discard(self, registry: TaskRegistry) -> None:
        self.refs.pop(id(registry), None)

    def __iter__(self) -> Iterator[TaskRegistry]:
        # list(): a dump() from another thread may see the dict change meanwhile
        # (RuntimeError, which its _snapshot() retries).
        for weak in list(self.refs.values()):
            registry = weak()
            if registry is not None:
                yield registry


#: Every open registry, for tether.dump().
open_registries = _OpenRegistries()

#: More trees for tether.dump(), drawn after the registries: the adopted tasks of
#: tether._adopt, which adds itself here when first used.
dump_extras: list[Callable[[float], list[Node]]] = []

#: When a daemon task is cancelled (``spawn(..., daemon=True, stop=...)``):
#: ``"on-close"`` as soon as closing begins, ``"after-drain"`` once the drain ends.
Stop: TypeAlias = Literal["on-close", "after-drain"]


class _AlreadySet:
    """The closed event of a registry that closed idle: set from the start."""

    __slots__ = ()

    def set(self) -> None:
        pass

    def is_set(self) -> bool:
        return True

    async def wait(self) -> None:
        pass


_ALREADY_SET = _AlreadySet()


class _NotWaitedFor:
    """The closed event of a registry closing that nobody waits for yet: a second
    closer makes the real one (most closes have none: an event less)."""

    __slots__ = ()

    def set(self) -> None:
        pass

    def is_set(self) -> bool:
        return False

    async def wait(self) -> None:  # pragma: no cover - replaced before any wait
        raise AssertionError("wait on the closed event the registry makes")


_NOT_WAITED_FOR = _NotWaitedFor()

#: A registry's daemons, after-drain daemons and closers until the first of each:
#: shared by every registry, frozen so that a write that forgot to make the
#: registry's own set fails at once (typed as the set it stands for).
_NO_HANDLES = cast("set[Handle[Any]]", frozenset())
#: A registry's pools until its first: shared, read-only.
_NO_POOLS = cast("dict[str, Pool]", MappingProxyType({}))


class RegistryState(enum.Enum):
    """The lifecycle of a :class:`~tether.TaskRegistry`: ``NEW`` until entered, then
    ``OPEN`` → ``DRAINING`` → ``CANCELLING`` → ``CLOSED``.

    .. versionadded:: 0.1
    """

    NEW = "new"
    OPEN = "open"
    DRAINING = "draining"
    CANCELLING = "cancelling"
    CLOSED = "closed"


NEW = RegistryState.NEW
OPEN = RegistryState.OPEN
DRAINING = RegistryState.DRAINING
CLOSED = RegistryState.CLOSED

_WHY_CLOSED = {
    NEW: "NEW: it has not been entered yet. Open it first with `async with registry:`",
    DRAINING: (
        "DRAINING: its body has ended, and only its own tasks may spawn follow-up "
        "work while it waits for them. Spawn inside the `async with` block"
    ),
    RegistryState.CANCELLING: (
        "CANCELLING: it is cancelling its tasks (a failure in raise mode, the "
        "shutdown deadline, or a cancellation) and takes no new work"
    ),
    CLOSED: "CLOSED: all its tasks have ended. Open a new TaskRegistry",
}


@dataclass(frozen=True, slots=True)
class RegistryStatistics:
    """A snapshot of a registry's counters; ``spawned`` is always the sum of
    ``queued``, ``running``, ``succeeded``, ``failed`` and ``cancelled``.
    ``restarts`` counts the restarts of services, which run in one task each.
    ``dropped`` counts the work :meth:`TaskRegistry.try_spawn` (or
    :meth:`Pool.try_spawn`) dropped because the registry was closing or closed
    (never spawned, so not in ``spawned``).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``restarts``.
    .. versionchanged:: 0.3
       ``dropped``.
    """

    spawned: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    restarts: int = 0
    dropped: int = 0


class TaskRegistry:
    """The owner of background tasks: it holds every task until the task ends.

    ``async with TaskRegistry() as tasks:`` opens it and binds it as the ambient
    registry for :func:`tether.spawn`; leaving the block waits for the tasks (up to
    ``shutdown_timeout``), then cancels what is left, so no task outlives it. The
    full lifecycle, error policies and limits are described in the semantics page.

    Entering does not block. Leaving blocks until every task has ended.

    Args:
        name: shown in ``repr``, log records and error messages.
        on_error: what a failing task does: ``"log"`` (the default) isolates it, and
            reports the failure once on logger ``"tether"`` unless an awaiter
            receives it; ``"raise"`` cancels everything and raises an
            ``ExceptionGroup`` from the ``async with``, like a task group; a callable
            ``(handle, exception) -> None`` isolates and reports to the callable.
        limit: at most this many tasks run at once; the rest wait FIFO in a queue.
        max_pending: bound on that queue (needs ``limit``); a spawn beyond it raises
            :exc:`~tether.RegistryFull`.
        shutdown_timeout: seconds the registry waits for its tasks once the body
            has ended normally, before it cancels them (``None``: no limit).
        debug: record in each handle where it was spawned (``handle.spawned_at``).
        ambient: entering the block binds the registry as the ambient one, and its
            tasks see it as theirs (``tether.spawn`` in a task spawns into the
            registry that owns the task). ``False`` makes a private registry for
            library code: it binds nothing, and its tasks keep the ambient
            registry of the code that spawned them.
        hooks: an observer of each task's life (spawned, started, ended); see
            :class:`~tether.Hooks`.
        context: ``"spawner"`` (the default): a task runs in a copy of the
            spawner's context, as ``asyncio.create_task`` does; ``"registry"``: in
            a copy of the context the registry was opened in, so that
            request-scoped context variables (a request id, a tracing span, a
            database session) do not follow the work into the background. An
            explicit ``context=`` on a spawn wins either way.

    Raises:
        TypeError: an option is of the wrong type (``shutdown_timeout="5"``).
        ValueError: an option is out of range (``limit=0``), or ``max_pending``
            was given without a ``limit``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``ambient``, ``hooks`` and ``context``; :meth:`open` and :meth:`aclose`;
       ``daemon=`` and ``timeout=`` on every spawn; :meth:`spawn_service`,
       :meth:`start` and :meth:`dump`.
    .. versionchanged:: 0.3
       An option of the wrong type raises ``TypeError`` (it raised ``ValueError``);
       :meth:`pool` (limits per kind of work) and :meth:`spawn_when_room`.
    """

    __slots__ = (
        "__weakref__",
        "_after_drain",
        "_ambient",
        "_annexed",
        "_backend",
        "_body_scope",
        "_body_task",
        "_cancelled",
        "_closed_event",
        "_closer",
        "_closers",
        "_create_task",
        "_daemons",
        "_debug",
        "_dropped",
        "_failed",
        "_hooks",
        "_host",
        "_idle_event",
        "_live",
        "_name",
        "_new_scope",
        "_opened_at",
        "_opened_context",
        "_opener",
        "_outcome_pending",
        "_own_context",
        "_policy_made",
        "_pools",
        "_restarts",
        "_shutdown_log_made",
        "_shutdown_timeout",
        "_slots",
        "_spawned",
        "_state",
        "_succeeded",
        "_thread",
        "_token",
        "_warned",
    )

    _backend: Backend
    _body_scope: Scope | None
    _token: Token[Bound] | None
    # Each a shared, frozen, empty stand-in until its first member (see __init__).
    _closers: set[Handle[Any]]
    _daemons: set[Handle[Any]]
    _after_drain: set[Handle[Any]]
    _pools: dict[str, Pool]
    _opener: object  # the task that opened it, for dump(): set as it opens
    _opened_at: float  # when it opened (time.monotonic()): set as it opens
    _create_task: Callable[..., object]  # the backend's, looked up once
    _new_scope: Callable[[], Scope]  # the scope each task enters

    def __init__(
        self,
        *,
        name: str = "registry",
        on_error: OnError = "log",
        limit: int | None = None,
        max_pending: int | None = None,
        shutdown_timeout: float | None = None,
        debug: bool = False,
        ambient: bool = True,
        hooks: Hooks | None = None,
        context: Literal["spawner", "registry"] = "spawner",
    ) -> None:
        if (
            type(name) is not str
            or limit is not None
            or max_pending is not None
            or shutdown_timeout is not None
            or debug is not False
            or ambient is not True
            or hooks is not None
            or context != "spawner"
        ):
            # Only options away from their defaults need a look: a short-lived
            # registry of defaults pays for none of it (issue #27 item 4).
            _check_options(name, limit, max_pending, shutdown_timeout, debug, ambient)
            if hooks is not None:
                check_hooks(hooks)
            check_choice(
                "TaskRegistry",
                "context",
                context,
                ("spawner", "registry"),
                "use 'spawner' (tasks run in a copy of the spawner's context) or "
                "'registry' (in a copy of the context the registry was opened in)",
            )
        # The error policy and the shutdown log are made at their first need
        # (properties below): a short-lived registry with the default on_error
        # makes neither (issue #27 item 4). Another on_error is checked now.
        self._policy_made = None if on_error == "log" else ErrorPolicy(on_error, name)
        self._shutdown_log_made: ShutdownLog | None = None
        self._name = name
        self._shutdown_timeout = shutdown_timeout
        self._debug = debug
        self._ambient = ambient
        self._hooks = hooks
        self._annexed = hooks is not None or debug  # every task carries an Annex
        self._own_context = context == "registry"
        # With context="registry": the context the registry was opened in.
        self._opened_context: Context | None = None
        self._token = None
        self._closed_event: Event | None = None
        # The task that called aclose(), when it is one of ours: spared.
        self._closer: Handle[Any] | None = None
        # An `async with` block will raise what its close collects: until then, a
        # failure in raise mode goes into its group rather than to the log.
        self._outcome_pending = False
        # Three sets, shared and empty (frozen, so that a write to them fails
        # loudly) until their first member, when the writer makes the registry's
        # own: most registries never have one. Readers need not know.
        # Every task of ours inside aclose() now: none waits for the others.
        self._closers = _NO_HANDLES
        # Tasks spawned with daemon=True that have not ended.
        self._daemons = _NO_HANDLES
        # The daemons among them spawned with stop="after-drain": a drain does
        # not wait for them, and does not cancel them either.
        self._after_drain = _NO_HANDLES
        self._dropped = 0  # work that try_spawn() dropped: the registry was closing
        self._warned = False  # the ResourceWarning of a registry left open
        self._slots = None if limit is None else Slots(limit, max_pending)
        # The pools of registry.pool(), by name: limits per kind of work (shared
        # and empty, read-only, until the first pool).
        self._pools = _NO_POOLS
        self._state = NEW
        self._thread = 0
        self._body_scope = None
        # While a block's body runs and its scope is to be made at first need
        # (the backend's late_scope): the task it runs in.
        self._body_task: object = None
        self._host: Host | None = None  # trio: the block's nursery holds the tasks
        self._idle_event: Event | None = None
        self._spawned = self._succeeded = self._failed = self._cancelled = 0
        self._restarts = 0
        # Live (running or cancelling) handles, each with what keeps its backend
        # task alive: the strong reference the event loop does not hold.
        self._live: dict[Handle[Any], object] = {}

    @property
    def _policy(self) -> ErrorPolicy:
        """The error policy, made at its first need (``on_error="log"``)."""
        policy = self._policy_made
        if policy is None:
            policy = self._policy_made = ErrorPolicy("log", self._name)
        return policy

    @property
    def _shutdown_log(self) -> ShutdownLog:
        """What the registry says while it closes, made at its first need."""
        log = self._shutdown_log_made
        if log is None:
            log = self._shutdown_log_made = ShutdownLog(self._name)
        return log

    # -- spawning ------------------------------------------------------------------

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (spawn overloads)
    @overload
    def spawn(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    # END GENERATED by tools/gen_overloads.py (spawn overloads)
    def spawn(
        self,
        fn: Any,
        /,
        *args: object,  # not Any: mypy 2.4 then rejects the overloads
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Start a task now and return its handle. Sync; never blocks.

        ``spawn(fn, *args)`` calls the async function ``fn`` here, which only creates
        its coroutine, so a wrong argument fails at this call; keyword arguments go
        through :func:`functools.partial`. ``spawn(coro)`` takes a coroutine object.
        The task first runs at the caller's next checkpoint, never inside ``spawn``
        (even under asyncio's ``eager_task_factory``), in a copy of the caller's
        context, or of ``context``. With a ``limit`` and no free slot the task is
        queued (``status`` is ``QUEUED``) and starts, FIFO, when a slot frees.

        Args:
            fn: an async function, or a coroutine object.
            *args: positional arguments for ``fn``.
            name: the task's name; default ``fn.__qualname__``.
            context: run the task in a copy of this context instead.
            daemon: a daemon task (a heartbeat, a consumer loop, a delayed
                cleanup) is cancelled as soon as closing begins instead of being
                drained, and is not named in the shutdown WARNING; the registry
                still waits for its cleanup.
            stop: when a daemon is cancelled: ``"on-close"`` (the default) as
                soon as closing begins; ``"after-drain"`` once every task that is
                not a daemon has ended, or the drain's deadline has passed, for a
                reader whose handlers need it until they finish. Only with
                ``daemon=True``.
            timeout: seconds the task may run (from its start, not its wait in
                the queue), as under :func:`anyio.fail_after`: if it overruns, it
                is cancelled and fails with the builtin :exc:`TimeoutError`, which
                ``on_error`` handles like any failure.

        Raises:
            TypeError: ``fn`` is not an async function or coroutine object, the
                arguments do not fit it, or keyword arguments were given (they go
                through :func:`functools.partial`). A coroutine object given is
                closed. Or an option (``timeout``, ``name``, ``daemon``,
                ``context``) is also a keyword parameter of ``fn`` that no
                argument fills: bind ``fn``'s own with :func:`functools.partial`,
                or pass a coroutine object with the option. Or an option is of
                the wrong type (``timeout="5"``).
            ValueError: ``timeout`` is not a number of seconds > 0.
            RegistryClosed: the registry is not open (see its lifecycle).
            RegistryFull: every slot is busy and the queue is at ``max_pending``.
            RuntimeError: called from a thread other than the event loop's.

        .. versionchanged:: 0.3
           An option that names a keyword parameter of ``fn`` is refused;
           ``stop``.
        """
        if kwargs:
            refuse_keywords(fn, kwargs, "spawn")
        if (
            name is not None
            or context is not None
            or daemon is not False
            or timeout is not None
        ):
            check_spawn_options(fn, "spawn", name, context, daemon, timeout, args)
        if stop is not None:
            _check_stop(fn, "spawn", daemon, stop, args)
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        if get_ident() != self._thread:
            self._refuse_thread(fn, "spawn")
        # The common case, an async function, is checked inline: this is the
        # per-task hot path, and coroutine_from handles everything else.
        if type(fn) is FunctionType and fn.__code__.co_flags & CO_COROUTINE:
            try:
                coro = fn(*args)
            except TypeError:
                coro = coroutine_from(fn, args, "spawn")  # raises the teaching error
            if name is None:
                name = fn.__qualname__
        else:
            coro = coroutine_from(fn, args, "spawn")
            if name is None:
                name = name_of(fn)
        return self._spawn_task(coro, name, context, daemon, stop, timeout)

    def _spawn_task(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        context: Context | None,
        daemon: bool,
        stop: Stop | None,
        timeout: float | None,
        annex: Annex | None = None,
        pool: Pool | None = None,
    ) -> Handle[Any]:
        """The one door in: every public spawn form checks its arguments and the
        registry's state once, makes the coroutine, and comes here (as anyio's
        ``start_soon`` comes to ``create_task``). It makes the handle, starts the
        task or queues it, and counts it.

        ``context``: a copy of it is what the task runs in (``None``: the
        spawner's, or with ``context="registry"`` the opener's). ``annex``: a
        service's, made before the handle because its supervisor holds it.
        ``pool``: the pool whose slots admit the task instead of the registry's;
        the task's annex names the pool, and its first done-callback frees the
        pool's slot.
        Refused here only when the queue is full (``RegistryFull``), or when the
        backend cannot start a task; ``coro`` is closed then.
        """
        handle: Handle[Any] = _new_handle(Handle)
        handle.owner_ = self
        handle.name_ = name
        handle.scope_ = None
        handle.event_ = None
        if timeout is None and annex is None and pool is None and not self._annexed:
            handle.annex_ = None
        else:
            self._add_annex(handle, timeout, annex)
        if context is None:
            context = self._opened_context  # None but with context="registry"
        # The task's context says that it descends from this registry and, unless
        # ambient=False, that its tether.spawn() goes here. Asked here, in the
        # spawner, rather than in the task's first step: a spawner's repeated
        # reads hit the variables' cache, a new task's first read never does.
        if context is None:
            ambient, lineage = bound.get()
            if (self._ambient and ambient is not self) or self not in lineage:
                context = self._bound_context(copy_context())
        else:
            context = self._bound_context(context.copy())
        slots = self._slots
        if pool is not None:
            self._add_to_pool(handle, coro, context, pool)
        elif slots is not None and not slots.free(len(self._live)):
            slots.enqueue(
                handle,
                coro,
                copy_context() if context is None else context,  # a copy already
                self._name,
            )
        else:  # launch_(), inline: this is the hot path
            handle.status_ = RUNNING
            try:
                self._live[handle] = self._create_task(
                    self._run,
                    handle,
                    coro,
                    name=name,
                    context=context,  # None, or a copy already
                )
            except BaseException:
                coro.close()
                raise
        self._spawned += 1  # counted only once the task is surely there
        if self._hooks is not None:  # before a daemon may be ended at once
            call_hook(self._hooks, "spawned", handle)
        if daemon:
            self._add_daemon(handle, stop)
        return handle

    def _add_to_pool(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
        pool: Pool,
    ) -> None:
        annex = handle.annex_
        assert annex is not None
        annex.pool = pool
        annex.callbacks.append(pool.task_ended_)
        pool.admit_(handle, coro, context, copy_context)

    def _add_annex(
        self, handle: Handle[Any], timeout: float | None, annex: Annex | None
    ) -> None:
        """What a task carries beyond the plain: a timeout, the hooks, and with
        ``debug=True`` where and when it was spawned; a service's annex given."""
        if annex is None:
            annex = Annex(timeout)
        annex.hooks = self._hooks
        handle.annex_ = annex
        if self._debug:
            annex.spawned_at = spawn_site()
            annex.born = time.monotonic()

    def _add_daemon(self, handle: Handle[Any], stop: Stop | None = None) -> None:
        if self._daemons is _NO_HANDLES:
            self._daemons = set()
        self._daemons.add(handle)
        if stop == "after-drain":
            if self._after_drain is _NO_HANDLES:
                self._after_drain = set()
            self._after_drain.add(handle)
            if self._state is not OPEN and self._state is not DRAINING:
                self._cancel_one(handle)
        elif self._state is not OPEN:  # closing has begun: not waited for
            self._cancel_one(handle)

    def launch_(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
    ) -> None:
        """Start a task that waited in the queue (a fresh spawn does the same,
        inline, in :meth:`_spawn_task`)."""
        handle.status_ = RUNNING
        try:
            task = self._create_task(
                self._run, handle, coro, name=handle.name_, context=context
            )
        except BaseException:
            coro.close()
            raise
        self._live[handle] = task

    def _refuse_thread(self, fn: object, api: str, pool: Pool | None = None) -> None:
        close_if_coroutine(fn)
        called, spawner = (
            (f"TaskRegistry.{api}() of registry", "registry")
            if pool is None
            else (f"Pool.{api}() of pool {pool.name!r} of registry", "pool")
        )
        raise RuntimeError(
            f"{called} {self._name!r} was called outside its event loop's thread. "
            f"From another thread, use {spawner}.spawn_threadsafe(fn, *args)"
        )

    def _check_may_spawn(self, fn: object) -> None:
        """Allow a spawn outside OPEN only for follow-up work while draining."""
        state = self._state
        if state is OPEN or (state is DRAINING and self in bound.get()[1]):
            return
        close_if_coroutine(fn)
        self._raise_closed(_WHY_CLOSED[state])

    def _raise_closed(self, why: str) -> None:
        raise RegistryClosed(f"TaskRegistry {self._name!r} is {why}")

    # -- a task's run ----------------------------------------------------------------

    @ki_protected  # on trio: a task's bookkeeping, not its body
    async def _run(self, handle: Handle[Any], coro: Coroutine[Any, Any, Any]) -> None:
        # Every local and every stack slot here lives in every parked task's frame
        # (the three arguments are all): the scope is read from the handle, the
        # exception from sys.exc_info(), and the rare paths are methods.
        if handle.status_ is CANCELLING:
            self._cancelled_before_start(handle, coro)
            return
        if handle.annex_ is None:
            handle.scope_ = self._new_scope()
        else:
            handle.scope_ = self._starting(handle, handle.annex_)
        # Entered and left by hand: a `with` keeps a bound __exit__ alive for as
        # long as the task runs, which every parked task pays for in memory.
        handle.scope_.__enter__()
        try:
            if self._backend.interruptible is not None:  # trio: Ctrl+C reaches it
                coro = self._backend.interruptible(coro)
                # Started by a host, which does not tell the task: it tells here.
                self._live[handle] = self._backend.current_task()
            handle.value_ = await coro  # no local: it would live in every frame
        except BaseException:
            self._task_raised(handle)
            return
        handle.scope_.__exit__(None, None, None)
        self._end(handle, FINISHED, handle.value_)

    def _cancelled_before_start(
        self, handle: Handle[Any], coro: Coroutine[Any, Any, Any]
    ) -> None:
        coro.close()  # cancelled before its first step: it never runs
        self._end(handle, CANCELLED, None)

    def _bound_context(self, context: Context) -> Context:
        """``context`` (a fresh copy), with what a task of this registry must see
        bound in it; the task runs in it."""
        context.run(self._bind_task_context)
        return context

    def _bind_task_context(self) -> None:
        """In a task's context: it descends from this registry, and its
        ``tether.spawn`` goes to this registry (unless ``ambient=False``)."""
        ambient, lineage = bound.get()
        if self not in lineage:
            lineage = (*lineage, self)
        bound.set((self if self._ambient else ambient, lineage))

    def _starting(self, handle: Handle[Any], annex: Annex) -> Scope:
        """The rare part of a task's start: its scope, with a deadline if it has
        a timeout, set on the handle before the ``started`` hook (which may cancel
        the task); returned."""
        scope = handle.scope_ = (
            self._new_scope()
            if annex.timeout is None
            else self._backend.new_deadline_scope(
                deadline=anyio.current_time() + annex.timeout
            )
        )
        if annex.hooks is not None:
            call_hook(annex.hooks, "started", handle)
        return scope

    def _task_raised(self, handle: Handle[Any]) -> None:
        """The task's coroutine raised (called in the ``except`` block, where
        ``sys.exc_info()`` holds it): leave the scope, and end as the rule says."""
        scope, exc = handle.scope_, sys.exc_info()[1]
        assert scope is not None
        assert exc is not None
        ending, exc = leave_scope(scope, exc, self._backend.cancelled_exc)
        if ending is Ending.CANCELLED:
            if handle.status_ is CANCELLING:  # our cancel()
                self._end(handle, CANCELLED, None)
                return
            exc = self._timed_out(handle, exc)  # not cancel(): its deadline
            ending = Ending.FAILED
        if isinstance(exc, Exception):  # Ending.FAILED
            self._end(handle, FAILED, exc)
            if self._policy.task_failed(handle, exc, self._outcome_given()):
                self._end_everything()
        elif ending is Ending.CANCELLED_FROM_OUTSIDE:
            if (
                self._state is OPEN or self._state is DRAINING
            ) and self._backend.loop_is_ending():
                # Before the release, which would start the next queued task
                # in a loop that is ending.
                self._left_open_at_loop_end(handle)
            self._end(handle, CANCELLED, None)
        else:
            # KeyboardInterrupt, SystemExit, GeneratorExit: never an on_error
            # matter. Kept to be re-raised bare from the block, and never re-raised
            # here: that would escape the event loop (asyncio) or crash the run
            # (trio).
            self._end(handle, CANCELLED, exc)
            self.fatal_(exc)

    def _timed_out(self, handle: Handle[Any], cancelled: BaseException) -> Exception:
        assert handle.annex_ is not None  # only a task with a timeout has a deadline
        timed_out = TimeoutError(
            f"task {handle.name_!r} ran longer than its timeout of "
            f"{handle.annex_.timeout:g} s"
        )
        timed_out.__context__ = cancelled  # shows where it was suspended
        return timed_out

    def _end(
        self,
        handle: Handle[Any],
        status: Status,
        value: object,
        wake: list[Event] | None = None,
    ) -> None:
        """The one end of every task, run or dropped from the queue: its status
        and outcome, its count, then what it held (its slot, its place among
        the live and the daemons), who waits for it, and its done-callbacks.

        ``value``: the result, the failure, or what cancelled it from outside
        (a ``KeyboardInterrupt``...) or ``None``. ``wake``: for a task dropped
        from the queue, set its awaiters' event only once the cancellations of
        the same call have landed (:meth:`_cancel_everything`).
        """
        started = handle.status_ is not QUEUED
        handle.status_ = status
        handle.value_ = value
        if status is FINISHED:
            self._succeeded += 1
        elif status is FAILED:
            handle.delivered_ = UNSEEN
            self._failed += 1
        else:
            self._cancelled += 1
        late = False  # a daemon kept for the drain, which may be over now
        if self._daemons:
            self._daemons.discard(handle)
            if self._after_drain:
                self._after_drain.discard(handle)
                late = self._state is DRAINING
        event = handle.event_
        if started:
            del self._live[handle]
            handle.scope_ = None
            if event is not None:
                event.set()
            slots = self._slots
            if (
                (slots is not None and slots.waiting())
                or not self._live
                or self._closers
                or late
                or self._idle_event is not None  # wait_idle: daemons may be left
            ):
                self._slot_freed()
        else:  # dropped from the queue: it never ran
            if event is not None:
                if wake is None:
                    event.set()
                else:
                    wake.append(event)
            self.notify_if_idle_()
        if handle.annex_ is not None:
            # Last: a callback that spawns must find the freed slot taken by the
            # next in line, not take it first.
            handle.ended_()

    def _slot_freed(self) -> None:
        """Hand a free slot to the next in line, or note that we may be idle."""
        slots = self._slots
        if slots is not None:
            entry = slots.next_in_line()
            if type(entry) is Handle:
                coro, context = entry.value_
                entry.value_ = None
                self.launch_(entry, coro, context)
                return
            if entry is not None:
                return  # a spawn_when_free caller holds it now
        self.notify_if_idle_()

    def notify_if_idle_(self) -> None:
        """Wake the waiters of ``wait_idle()`` and the close if nothing is left."""
        # Every waiter spares a subset of _closers and the daemons, so none can
        # be satisfied unless this is: wake them all, and each checks its own
        # condition.
        if self._is_idle(None, count_daemons=False):
            event = self._idle_event
            if event is not None:
                self._idle_event = None
                event.set()

    def _is_idle(
        self,
        spared: Collection[Handle[Any]] | None = None,
        *,
        count_daemons: bool = True,
    ) -> bool:
        """Nothing queued, and nothing running but the tasks in ``spared``
        (default: every task of ours inside ``aclose()``), and, unless
        ``count_daemons`` (as for :meth:`wait_idle`), the daemons."""
        slots = self._slots
        if slots is not None and (
            slots.queued or slots.reserved or slots.room_reserved
        ):
            return False
        if self._pools and any(pool.busy_() for pool in self._pools.values()):
            return False
        live = self._live
        if not live:
            return True
        if spared is None:
            spared = self._closers
        if len(live) <= len(spared) and all(h in spared for h in live):
            return True
        if not count_daemons:
            daemons = self._daemons
            return len(live) <= len(spared) + len(daemons) and all(
                h in spared or h in daemons for h in live
            )
        # While draining, the daemons kept for the drain do not count.
        late = self._after_drain
        return (
            bool(late)
            and self._state is DRAINING
            and all(h in spared or h in late for h in live)
        )

    # -- what a handle asks of its owner (tether._handle.Owner) ----------------------
    #
    # A trailing underscore marks a member that tether's own modules share: not the
    # API (kept out of the docs), public to the package so that pyright's
    # reportPrivateUsage holds everywhere else.

    def cancel_task_(self, handle: Handle[Any]) -> None:
        """Cancel the task behind ``handle`` (queued or running)."""
        if get_ident() != self._thread:
            # Refused before anything changes, so the handle stays cancellable.
            raise RuntimeError(
                f"Handle.cancel() of task {handle.name_!r} was called outside the "
                "event loop's thread. From another thread, use "
                "anyio.from_thread.run_sync(handle.cancel)"
            )
        self._cancel_one(handle)
        self._backend.wake()  # from a signal handler, the loop may be asleep

    def _cancel_one(self, handle: Handle[Any]) -> None:
        if handle.status_ is QUEUED:
            self._queue_of(handle).dropped()
            self._close_queued(handle)
        elif handle.status_ is RUNNING:
            handle.status_ = CANCELLING
            if handle.scope_ is not None:
                handle.scope_.cancel()

    def _queue_of(self, handle: Handle[Any]) -> Slots:
        """The queue a queued task waits in: its pool's, or the registry's."""
        annex = handle.annex_
        if annex is not None and annex.pool is not None:
            pool: Pool = annex.pool
            return pool.slots_
        assert self._slots is not None  # only a registry with a limit queues
        return self._slots

    def _queues(self) -> list[Slots]:
        """The registry's queue, if it has a limit, and each pool's."""
        queues = [pool.slots_ for pool in self._pools.values()]
        if self._slots is not None:
            queues.append(self._slots)
        return queues

    def new_event_(self) -> Event:
        """A fresh event of the registry's backend."""
        return self._backend.new_event()

    def fatal_(self, exc: BaseException) -> None:
        """A callback or hook raised ``KeyboardInterrupt``-like ``exc``: end all."""
        # A KeyboardInterrupt or SystemExit from a done-callback or a hook: as
        # from a task, everything is cancelled and the block re-raises it bare.
        self._policy.base_exception(exc)
        self._end_everything()
        hand_over = self._backend.hand_over_interrupt
        if (
            hand_over is not None
            and not self._outcome_pending  # no block to re-raise it: open(),
            and self._closed_event is None  # or the default registry, unclosed
            and self._policy.base_exc is exc
            and isinstance(exc, KeyboardInterrupt)
            and hand_over()
        ):
            # trio raises it in the main task, as a Ctrl+C that lands in its own
            # protected code, instead of leaving it for an aclose() that may not
            # come before the program ends: aclose() does not raise it again.
            self._policy.base_handed_over = True

    def refuse_self_wait_(self, handle: Handle[Any]) -> None:
        """Raise ``RuntimeError`` if the running task is ``handle``'s own."""
        if self._live.get(handle) is self._backend.current_task():
            raise RuntimeError(
                f"task {handle.name_!r} waits for its own handle, which would never "
                "return: a task cannot wait for its own end"
            )

    def report_(self, handle: Handle[Any]) -> None:
        """Report the failure of ``handle`` that no awaiter received."""
        if self._policy.report(handle):
            self._end_everything()

    def _outcome_given(self) -> bool:
        """Whether the close has raised what it had to: no block is left to raise
        a failure that comes now (the task that closed it, failing after)."""
        return self._state is CLOSED and not self._outcome_pending

    def _close_queued(
        self, handle: Handle[Any], wake: list[Event] | None = None
    ) -> None:
        """Drop a queued task: it never runs. Its awaiters wake now, or with
        ``wake`` given, once the cancellations of the same call have landed."""
        coro, _ = handle.value_
        coro.close()
        self._end(handle, CANCELLED, None, wake)

    # -- controls --------------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Wait until no task is running or queued, daemons apart, without
        closing the registry.

        A checkpoint. Returns at the first moment the registry is idle; a task
        spawned after that is not waited for. Cancelling the waiter cancels no task.

        Daemon tasks (``daemon=True``, services) do not count, as they do not
        hold up the drain: a heartbeat, a consumer loop or a reader runs until the
        registry closes, and a registry with one would never be idle. Queued
        tasks count, daemons or not. To wait for a daemon to end, await its
        handle (``await reader.wait()``). A daemon of the registry may call
        ``wait_idle()``; any other task of the registry is refused, as the
        registry is not idle while it runs.

        Raises:
            RuntimeError: called by a task of this registry that is not a daemon
                (it would never return).

        .. versionchanged:: 0.3
           Daemon tasks do not count: ``wait_idle()`` waited for them too, so it
           never returned while a service, a heartbeat or a reader ran.
        """
        if self._is_idle(None, count_daemons=False):
            await anyio.lowlevel.checkpoint()
            return
        own = self._own_handle()
        if own is not None and own not in self._daemons:
            raise RuntimeError(
                f"task {own.name_!r} of TaskRegistry {self._name!r} called its "
                "registry's wait_idle(), which would never return: the registry is "
                "not idle while the caller runs. Wait for the other tasks' handles "
                "instead"
            )
        await self._wait_until_idle(None, count_daemons=False)

    def _wake_idle_waiters(self) -> None:
        """Wake every idle waiter, idle or not: each checks its own condition."""
        event = self._idle_event
        if event is not None:
            self._idle_event = None
            event.set()

    async def _wait_until_idle(
        self,
        spared: Collection[Handle[Any]] | None = None,
        *,
        count_daemons: bool = True,
    ) -> None:
        while not self._is_idle(spared, count_daemons=count_daemons):
            event = self._idle_event
            if event is None:
                event = self._idle_event = self._backend.new_wakeup()
            await event.wait()

    def cancel_all(self) -> None:
        """Cancel every running task and drop every queued one; the registry stays
        open and takes new work. Never blocks."""
        if self._cancel_everything(closing=False):
            self._backend.wake()  # from a signal handler, the loop may be asleep

    def _cancel_everything(self, *, closing: bool) -> bool:
        """Cancel what runs and drop what is queued; whether there was any."""
        if not self._live and self._slots is None and not self._pools:
            return False  # nothing runs, nothing can wait in a queue
        running = [
            h for h in self._live if h.status_ is RUNNING and h is not self._closer
        ]
        queued: list[Handle[Any]] = []
        wake: list[Event] = []
        for slots in self._queues():
            taken, waiters = slots.take_queued(closing=closing)
            queued += taken
            wake += waiters
        if closing:  # daemons are cancelled at shutdown by design: not news
            daemons = self._daemons
            self._shutdown_log.cancelled(
                [h for h in running if h not in daemons],
                [h for h in queued if h not in daemons],
            )
        scopes: list[Scope] = []
        for handle in running:
            handle.status_ = CANCELLING
            if handle.scope_ is not None:  # else it has not started: it never will
                scopes.append(handle.scope_)
        for handle in queued:
            # A running task awaiting a dropped one is cancelled too: it must see
            # its own cancellation, not the dropped task's (TaskCancelled).
            # One by one: a hook may read statistics().
            self._queue_of(handle).unqueued()
            self._close_queued(handle, wake)
        if scopes or wake:
            self._backend.cancel_soon(scopes, wake)
            return True
        return False

    def bind(self) -> _Binding[Self]:
        """Return a sync context manager that makes this registry the ambient one
        (for :func:`tether.spawn`) inside its block, and yields the registry.

        For code that does not run inside the ``async with``, such as a request
        handler of a web app whose registry was opened in the lifespan.
        """
        return _Binding(self)

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (try_spawn)
    @overload
    def try_spawn(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T] | None: ...
    @overload
    def try_spawn(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T] | None: ...
    # END GENERATED by tools/gen_overloads.py (try_spawn)
    def try_spawn(
        self,
        fn: Any,
        /,
        *args: object,  # not Any: mypy 2.4 then rejects the overloads
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any] | None:
        """Offer work: spawn it as :meth:`spawn` does while the registry is open,
        and drop it, returning ``None``, once closing has begun. Sync; never blocks.

        For a reader that turns each event into a task: the events that arrive
        while its registry drains or is closed are dropped, where :meth:`spawn`
        would raise :exc:`~tether.RegistryClosed` (or, from one of the
        registry's own tasks while it drains, take them as follow-up work and
        keep the drain going). A dropped call is still checked as :meth:`spawn`
        checks it, and its coroutine is closed, never run; each drop is logged
        at DEBUG on logger ``"tether"`` and counted in
        ``statistics().dropped``.

        Args and options are those of :meth:`spawn`.

        Returns:
            The task's handle, or ``None`` if the registry is draining,
            cancelling or closed.

        Raises:
            TypeError: as :meth:`spawn`, whether the work is taken or dropped.
            RegistryClosed: the registry has not been opened yet (a misuse, not
                a shutdown).
            RegistryFull: as :meth:`spawn`: a full queue is backpressure, not a
                shutdown, so it is not a drop.
            RuntimeError: called from a thread other than the event loop's.

        .. versionadded:: 0.3
        """
        return self.offer_(None, fn, args, kwargs, name, context, daemon, stop, timeout)

    def offer_(
        self,
        pool: Pool | None,
        fn: Any,
        args: tuple[object, ...],
        kwargs: dict[str, object],
        name: str | None,
        context: Context | None,
        daemon: bool,
        stop: Stop | None,
        timeout: float | None,
    ) -> Handle[Any] | None:
        """:meth:`try_spawn`, into the registry or into ``pool``."""
        if kwargs:
            refuse_keywords(fn, kwargs, "try_spawn")
        if (
            name is not None
            or context is not None
            or daemon is not False
            or timeout is not None
        ):
            check_spawn_options(fn, "try_spawn", name, context, daemon, timeout, args)
        if stop is not None:
            _check_stop(fn, "try_spawn", daemon, stop, args)
        state = self._state
        if state is NEW:
            self._check_may_spawn(fn)  # raises: never opened
        if get_ident() != self._thread:
            self._refuse_thread(fn, "try_spawn", pool)
        # Here, so that a misfit names try_spawn; checked whether taken or dropped.
        coro = coroutine_from(fn, args, "try_spawn")
        if name is None:
            name = name_of(fn)
        if state is OPEN:
            return self._spawn_task(
                coro, name, context, daemon, stop, timeout, None, pool
            )
        coro.close()  # dropped: it never runs
        self._dropped += 1
        if pool is None:
            self._shutdown_log.dropped(state.name, name)
        else:
            pool.dropped_ += 1
            self._shutdown_log.dropped(state.name, name, pool.name)
        return None

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (spawn_when_free)
    @overload
    async def spawn_when_free(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_free(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    # END GENERATED by tools/gen_overloads.py (spawn_when_free)
    async def spawn_when_free(
        self,
        fn: Any,
        /,
        *args: object,  # not Any: mypy 2.4 then rejects the overloads
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Wait until a slot is free, then spawn; the backpressure form of ``spawn``.

        A checkpoint. Callers wait FIFO, in one queue with tasks queued by
        :meth:`spawn`; the slot is claimed and the task spawned atomically, so the
        task never waits in the queue. Without a ``limit`` it spawns at once.
        If the caller is cancelled while waiting, nothing is spawned and the
        coroutine is closed.

        ``daemon``, ``stop`` and ``timeout`` are as for :meth:`spawn`.

        Raises:
            TypeError: as :meth:`spawn`.
            RegistryClosed: the registry does not take work, now or when the slot
                comes.

        .. versionchanged:: 0.3
           ``stop``.
        """
        return await self.spawn_when_free_(
            None,
            "spawn_when_free",
            fn,
            args,
            kwargs,
            name,
            context,
            daemon,
            stop,
            timeout,
        )

    async def spawn_when_free_(
        self,
        pool: Pool | None,
        api: str,
        fn: Any,
        args: tuple[object, ...],
        kwargs: dict[str, object],
        name: str | None,
        context: Context | None,
        daemon: bool,
        stop: Stop | None,
        timeout: float | None,
    ) -> Handle[Any]:
        """:meth:`spawn_when_free`, into the registry or into ``pool``."""
        if kwargs:
            refuse_keywords(fn, kwargs, api)
        if (
            name is not None
            or context is not None
            or daemon is not False
            or timeout is not None
        ):
            check_spawn_options(fn, api, name, context, daemon, timeout, args)
        if stop is not None:
            _check_stop(fn, api, daemon, stop, args)
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            close_if_coroutine(fn)
            raise
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        if get_ident() != self._thread:
            self._refuse_thread(fn, api, pool)
        coro = coroutine_from(fn, args, api)
        if name is None:
            name = name_of(fn)
        slots = self._slots if pool is None else pool.slots_
        running = len(self._live) if pool is None else len(pool.running_)
        if slots is None or slots.free(running):
            handle = self._spawn_task(
                coro, name, context, daemon, stop, timeout, None, pool
            )
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return handle
        slot_freed = self._slot_freed if pool is None else pool.slot_freed_
        waiter = slots.wait_for_slot(self._backend.new_event())
        try:
            await waiter.event.wait()
        except BaseException:
            coro.close()
            granted = waiter.granted
            slots.gave_up(waiter)
            if granted:
                slot_freed()  # hand the slot we were given to the next
            raise
        if waiter.closed:
            coro.close()
            self._raise_closed(_WHY_CLOSED[self._state])
        slots.claim()
        if self._state is not OPEN:
            try:
                self._check_may_spawn(coro)
            except RegistryClosed:
                slot_freed()
                raise
        return self._spawn_task(coro, name, context, daemon, stop, timeout, None, pool)

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (spawn_when_room)
    @overload
    async def spawn_when_room(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_room(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    # END GENERATED by tools/gen_overloads.py (spawn_when_room)
    async def spawn_when_room(
        self,
        fn: Any,
        /,
        *args: object,  # not Any: mypy 2.4 then rejects the overloads
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Wait until the task may start or wait in the queue, then spawn it:
        the backpressure form of ``spawn`` for a queue bounded by ``max_pending``
        (aiojobs' ``Scheduler.spawn``, which waits while the pending queue is
        full).

        A checkpoint. Where :meth:`spawn` would raise
        :exc:`~tether.RegistryFull`, this waits, FIFO with the other callers, for
        a place in the queue: a queued task that starts or is dropped frees one.
        The place is reserved for the caller, so a plain :meth:`spawn` cannot
        take it. The task is then spawned as :meth:`spawn` does it: started if a
        slot is free, else queued (``status`` is ``QUEUED``). Without
        ``max_pending`` (or without a ``limit``) it spawns at once; with
        ``max_pending=0`` there is never room in the queue, and it waits for a
        free slot as :meth:`spawn_when_free` does. If the caller is cancelled
        while waiting, nothing is spawned and the coroutine is closed.

        ``daemon``, ``stop`` and ``timeout`` are as for :meth:`spawn`.

        Raises:
            TypeError: as :meth:`spawn`.
            RegistryClosed: the registry does not take work, now or when the
                place comes.

        .. versionadded:: 0.3
        """
        return await self.spawn_when_room_(
            None,
            "spawn_when_room",
            fn,
            args,
            kwargs,
            name,
            context,
            daemon,
            stop,
            timeout,
        )

    async def spawn_when_room_(
        self,
        pool: Pool | None,
        api: str,
        fn: Any,
        args: tuple[object, ...],
        kwargs: dict[str, object],
        name: str | None,
        context: Context | None,
        daemon: bool,
        stop: Stop | None,
        timeout: float | None,
    ) -> Handle[Any]:
        """:meth:`spawn_when_room`, into the registry or into ``pool``."""
        slots = self._slots if pool is None else pool.slots_
        if slots is not None and slots.max_pending == 0:
            # No queue to wait in: a free slot is the only room there is.
            return await self.spawn_when_free_(
                pool, api, fn, args, kwargs, name, context, daemon, stop, timeout
            )
        if kwargs:
            refuse_keywords(fn, kwargs, api)
        if (
            name is not None
            or context is not None
            or daemon is not False
            or timeout is not None
        ):
            check_spawn_options(fn, api, name, context, daemon, timeout, args)
        if stop is not None:
            _check_stop(fn, api, daemon, stop, args)
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            close_if_coroutine(fn)
            raise
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        if get_ident() != self._thread:
            self._refuse_thread(fn, api, pool)
        coro = coroutine_from(fn, args, api)
        if name is None:
            name = name_of(fn)
        running = len(self._live) if pool is None else len(pool.running_)
        if slots is None or slots.free(running) or slots.has_room():
            handle = self._spawn_task(
                coro, name, context, daemon, stop, timeout, None, pool
            )
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return handle
        waiter = slots.wait_for_room(self._backend.new_event())
        try:
            await waiter.event.wait()
        except BaseException:
            coro.close()
            slots.gave_up_room(waiter)  # hands on the place we were given
            raise
        if waiter.closed:
            coro.close()
            self._raise_closed(_WHY_CLOSED[self._state])
        slots.claim_room()
        if self._state is not OPEN:
            try:
                self._check_may_spawn(coro)
            except RegistryClosed:
                slots.grant_room()  # the place we were given, to the next
                raise
        return self._spawn_task(coro, name, context, daemon, stop, timeout, None, pool)

    def pool(self, name: str, /, *, limit: int, max_pending: int | None = None) -> Pool:
        """Make a pool: a limit for one kind of work inside this registry.

        At most ``limit`` of the pool's tasks run at once; the rest wait in the
        pool's own FIFO queue, bounded by ``max_pending``. Spawn into it with
        :meth:`Pool.spawn <tether.Pool.spawn>`, :meth:`Pool.spawn_when_free
        <tether.Pool.spawn_when_free>` or :meth:`Pool.spawn_when_room
        <tether.Pool.spawn_when_room>`. The pool's tasks are the registry's in
        every other way: one lifetime (they drain and are cancelled when it
        closes; the pool has no close of its own), one ``on_error`` for their
        failures, the same hooks, and they are counted in its
        :meth:`statistics` and drawn by :meth:`dump`. A pool task's
        :func:`tether.spawn` spawns into the registry, not the pool: the
        follow-up work of a job (a notification, a log upload) does not wait
        behind the queued jobs, as it does under one registry-wide ``limit``.

        Never blocks. Call it before or after the registry opens (a web app's
        startup, say), once per name.

        Args:
            name: the pool's name, unique in the registry; shown by ``dump()``,
                ``repr`` and :exc:`~tether.RegistryFull`.
            limit: at most this many of the pool's tasks run at once (>= 1).
            max_pending: bound on the pool's queue (>= 0); a spawn beyond it
                raises :exc:`~tether.RegistryFull`. ``None``: unbounded.

        Raises:
            TypeError: ``name`` is not a str, or ``limit`` or ``max_pending`` not
                an int.
            ValueError: ``limit`` or ``max_pending`` is out of range, a pool of
                that name exists, or the registry has a ``limit`` of its own
                (which would count the pools' tasks and their follow-up work in
                one line again: give each kind of work its own pool instead).
            RegistryClosed: the registry is closing or closed.

        .. versionadded:: 0.3
        """
        check_name("TaskRegistry.pool", "name", name)
        check_count("TaskRegistry.pool", "limit", limit, 1, "")
        if max_pending is not None:
            check_count(
                "TaskRegistry.pool",
                "max_pending",
                max_pending,
                0,
                ", or None for an unbounded queue",
            )
        if self._slots is not None:
            raise ValueError(
                f"TaskRegistry.pool({name!r}): TaskRegistry {self._name!r} has a "
                f"limit of its own (limit={self._slots.limit}), which counts every "
                "task in it, the pools' and their follow-up work included. Make "
                "the registry without a limit and give each kind of work a pool: "
                f"registry.pool({name!r}, limit={limit!r})"
            )
        if name in self._pools:
            raise ValueError(
                f"TaskRegistry.pool({name!r}): TaskRegistry {self._name!r} has a "
                f"pool named {name!r} already; keep the Pool that call returned "
                "(an attribute of the object that owns the registry, or "
                "app[key]), or give this one another name"
            )
        if self._state is not NEW and self._state is not OPEN:
            self._raise_closed(_WHY_CLOSED[self._state])
        if self._pools is _NO_POOLS:
            self._pools = {}
        pool = self._pools[name] = Pool.new_(self, name, limit, max_pending)
        return pool

    def spawn_pooled_(
        self,
        pool: Pool,
        api: str,
        fn: Any,
        args: tuple[object, ...],
        kwargs: dict[str, object],
        name: str | None,
        context: Context | None,
        daemon: bool,
        stop: Stop | None,
        timeout: float | None,
    ) -> Handle[Any]:
        """:meth:`Pool.spawn`: :meth:`spawn`, admitted by the pool's slots (see
        :meth:`_spawn_task`)."""
        if kwargs:
            refuse_keywords(fn, kwargs, api)
        if (
            name is not None
            or context is not None
            or daemon is not False
            or timeout is not None
        ):
            check_spawn_options(fn, api, name, context, daemon, timeout, args)
        if stop is not None:
            _check_stop(fn, api, daemon, stop, args)
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        if get_ident() != self._thread:
            self._refuse_thread(fn, api, pool)
        coro = coroutine_from(fn, args, api)
        if name is None:
            name = name_of(fn)
        return self._spawn_task(coro, name, context, daemon, stop, timeout, None, pool)

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (spawn_threadsafe)
    @overload
    def spawn_threadsafe(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[Handle[T]]: ...
    @overload
    def spawn_threadsafe(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[Handle[T]]: ...
    # END GENERATED by tools/gen_overloads.py (spawn_threadsafe)
    def spawn_threadsafe(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> concurrent.futures.Future[Handle[Any]]:
        """Spawn from another thread; return a future of the handle. Never blocks.

        The spawn itself happens on the registry's event loop thread, soon, in a
        copy of the calling thread's context, exactly as :meth:`spawn` would do it
        there (so a worker thread of one of the registry's own tasks may still
        spawn follow-up work while the registry drains, on every backend). The
        returned :class:`concurrent.futures.Future` resolves to the handle, or to
        the exception the spawn raised (``RegistryClosed``, ``RegistryFull``).
        Arguments are checked here, at once.

        Raises:
            TypeError: as :meth:`spawn`.
            RuntimeError: called on the event loop's own thread (use :meth:`spawn`),
                or the event loop is closed.
            RegistryClosed: the registry was never entered, or has closed.

        .. versionchanged:: 0.3
           ``stop``, as for :meth:`spawn`.
        """
        return self.spawn_threadsafe_(
            None, fn, args, kwargs, name, daemon, stop, timeout
        )

    def spawn_threadsafe_(
        self,
        pool: Pool | None,
        fn: Any,
        args: tuple[object, ...],
        kwargs: dict[str, object],
        name: str | None,
        daemon: bool,
        stop: Stop | None,
        timeout: float | None,
    ) -> concurrent.futures.Future[Handle[Any]]:
        """:meth:`spawn_threadsafe`, into the registry or into ``pool``."""
        if kwargs:
            refuse_keywords(fn, kwargs, "spawn_threadsafe")
        if name is not None or daemon is not False or timeout is not None:
            check_spawn_options(
                fn, "spawn_threadsafe", name, None, daemon, timeout, args
            )
        if stop is not None:
            _check_stop(fn, "spawn_threadsafe", daemon, stop, args)
        if get_ident() == self._thread:
            close_if_coroutine(fn)
            called, spawner = (
                ("TaskRegistry", "registry") if pool is None else ("Pool", "pool")
            )
            raise RuntimeError(
                f"{called}.spawn_threadsafe() was called on the event loop's "
                f"own thread: use {spawner}.spawn(fn, *args) there"
            )
        if self._state is NEW or self._state is CLOSED:
            self._check_may_spawn(fn)
        coro = coroutine_from(fn, args, "spawn_threadsafe")
        task_name = name_of(fn) if name is None else name
        import concurrent.futures

        future: concurrent.futures.Future[Handle[Any]] = concurrent.futures.Future()
        context = copy_context()

        def on_loop() -> None:
            if not future.set_running_or_notify_cancel():
                coro.close()  # the caller cancelled the future before we got here
                return
            try:
                # In the thread's context, so the draining check sees its lineage
                # whatever context the loop runs its callbacks in.
                handle = context.run(
                    self._spawn_from_thread,
                    coro,
                    task_name,
                    context,
                    daemon,
                    timeout,
                    stop,
                    pool,
                )
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(handle)

        try:
            self._backend.call_soon_threadsafe(on_loop)
        except BaseException:
            coro.close()
            raise
        return future

    def _spawn_from_thread(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        context: Context,
        daemon: bool,
        timeout: float | None,
        stop: Stop | None,
        pool: Pool | None,
    ) -> Handle[Any]:
        """``spawn_threadsafe``'s spawn, on the loop in the thread's ``context``."""
        if self._state is not OPEN:
            self._check_may_spawn(coro)
        return self._spawn_task(
            coro,
            name,
            None if self._own_context else context,
            daemon,
            stop,
            timeout,
            None,
            pool,
        )

    # -- long-running work ----------------------------------------------------------

    def spawn_service(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        restart: Restart = "on-failure",
        max_restarts: int | None = 5,
        restart_window: float = 60.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float | None = None,
        restart_on: type[Exception] | tuple[type[Exception], ...] = Exception,
        stop: Stop | None = None,
        # Handle[Any]: a callable typed for any handle must not make T Any.
        on_give_up: Literal["raise"] | Callable[[Handle[Any]], object] | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[T]:
        """Spawn a service: a daemon task that runs ``fn(*args)`` again after it
        fails, with a growing delay, until its restart budget is spent.

        For work that must keep running (a queue consumer, a websocket feed, a
        cache refresher). Sync; the first run starts as :meth:`spawn`'s task does.
        The service is a daemon: cancelled, not drained, as soon as closing begins
        (or once the drain ends, with ``stop="after-drain"``), which also ends a
        backoff sleep at once. A cancellation (of the handle, the
        registry, or a daemon at shutdown) never causes a restart; nor does a
        ``KeyboardInterrupt``. Each restart is logged as a WARNING naming the
        failure it follows, with its traceback the first time in an outage (and
        whenever the kind of failure changes), then as one line. When more than
        ``max_restarts`` restarts would fall within ``restart_window`` seconds,
        the service gives up: its last failure is the task's failure and goes to
        ``on_error`` like any other, unless ``on_give_up`` escalates it.

        The task holds one slot of a ``limit`` for its whole life, backoff sleeps
        included. ``handle.restarts`` and ``statistics().restarts`` count the
        restarts; the handle's result is the value of the run that returned.

        Args:
            fn: an async function (called anew for each run; a coroutine object
                can run only once, so it is refused).
            *args: positional arguments for ``fn``, the same for every run.
            name: the task's name; default ``fn.__qualname__``.
            context: run in a copy of this context instead of the caller's.
            restart: ``"on-failure"`` (the default) restarts after ``fn`` raises an
                ``Exception``; ``"always"`` after it returns, too.
            max_restarts: the restart budget: at most this many restarts within
                ``restart_window`` seconds; ``None`` restarts without limit.
            restart_window: the sliding period, in seconds, over which restarts are
                counted; a service that stays up longer earns its budget back.
            backoff: the delay before the first restart, in seconds; it doubles
                with each restart counted in the window, up to ``max_backoff``, and
                is scaled by a random factor between 0.5 and 1 (jitter).
            max_backoff: the longest delay between two runs, in seconds.
            timeout: seconds each run may take; a run that overruns fails with
                :exc:`TimeoutError`, which counts as a failure (and so restarts,
                if ``restart_on`` covers it).
            restart_on: the failures that restart the service (an ``Exception``
                subclass or a tuple of them; default every ``Exception``). Any
                other failure, a bug such as a ``TypeError`` say, fails the
                service at once and goes to ``on_error``.
            on_give_up: what the service's stopping for good on its own does
                (its budget spent, or a failure outside ``restart_on``): ``None``
                (the default) nothing more, its failure goes to ``on_error``;
                ``"raise"`` fails the registry as ``on_error="raise"`` does, so
                every task and the body are cancelled and the block (or
                :meth:`aclose`) raises an ``ExceptionGroup`` with the failure
                (a web app's registry stops its server); a plain callable
                ``(handle) -> None`` is called once the task has ended, as a
                done-callback is (the failure still goes to ``on_error``). Under
                ``restart="always"``, a service that gives up after a run
                *returned* fails with a :exc:`RuntimeError` saying so when
                ``on_give_up="raise"``.
            stop: ``"after-drain"`` keeps the service through the drain (and
                restarts it there), as ``spawn(..., daemon=True,
                stop="after-drain")`` keeps a daemon; by default, ``"on-close"``,
                it is cancelled as soon as closing begins.

        Raises:
            TypeError: as :meth:`spawn`, for a coroutine object, for a
                ``restart_on`` that is not ``Exception`` subclasses, and for an
                ``on_give_up`` that is not ``"raise"``, a plain callable taking
                the handle, or None, and for an option of the wrong type
                (``backoff="1"``).
            ValueError: an option out of range (``restart`` not one of the two
                words, a budget of zero, a delay of zero or less, ``max_backoff``
                below ``backoff``, an empty ``restart_on``, an ``on_give_up``
                string other than ``"raise"``). The registry is unchanged.
            RegistryClosed: the registry does not take work.

        .. versionadded:: 0.2

        .. versionchanged:: 0.3
           ``restart_on``; a restart's traceback is logged once per outage;
           ``stop``; ``on_give_up``.
        """
        if kwargs:
            refuse_keywords(fn, kwargs, "spawn_service")
        refuse_if_coroutine(
            fn,
            "spawn_service",
            "a service calls its function again for each restart, and a coroutine "
            "runs only once",
        )
        check_spawn_options(fn, "spawn_service", name, context, False)
        if stop is not None:
            _check_stop(fn, "spawn_service", True, stop, args)
        given: dict[str, object] = {
            option: value
            for option, value, default in (
                ("name", name, None),
                ("context", context, None),
                ("restart", restart, "on-failure"),
                ("max_restarts", max_restarts, 5),
                ("restart_window", restart_window, 60.0),
                ("backoff", backoff, 0.5),
                ("max_backoff", max_backoff, 30.0),
                ("timeout", timeout, None),
                ("restart_on", restart_on, Exception),
                ("on_give_up", on_give_up, None),
                ("stop", stop, None),
            )
            if value is not default and value != default
        }
        if given:
            refuse_ambiguous_options(fn, args, "spawn_service", given)
        plan = RestartPlan(
            restart,
            max_restarts,
            restart_window,
            backoff,
            max_backoff,
            timeout,
            restart_on,
            on_give_up,
        )
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        if get_ident() != self._thread:
            self._refuse_thread(fn, "spawn_service")
        check_callable_with(fn, args, "spawn_service")
        task_name = name_of(fn) if name is None else name
        annex = Annex()  # the service counts its restarts in it
        handle: Handle[Any] | None = None  # the service asks it if it is cancelled
        service = supervise(
            task_name,
            annex,
            fn,
            args,
            plan,
            self._name,
            self._count_restart,
            lambda: handle is not None and handle.status_ is CANCELLING,
            lambda: plan.gave_up(annex, handle),
        )
        handle = self._spawn_task(service, task_name, context, True, stop, None, annex)
        return handle

    def _count_restart(self) -> None:
        self._restarts += 1

    # anyio's and trio's TaskStatus, typed each way: see tether._startable. (mypy
    # calls the arity-0 overloads after the first unreachable, yet takes them:
    # hence the mypy comment at the top of this module.)
    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (start overloads)
    @overload
    async def start(
        self,
        fn: EitherStartable0[T],
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: EitherStartable1[T, A1],
        a1: A1,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: EitherStartable2[T, A1, A2],
        a1: A1,
        a2: A2,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: EitherStartable3[T, A1, A2, A3],
        a1: A1,
        a2: A2,
        a3: A3,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: EitherStartable4[T, A1, A2, A3, A4],
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: EitherStartable5[T, A1, A2, A3, A4, A5],
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        a5: A5,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: Startable0[T],
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: Startable1[T, A1],
        a1: A1,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: Startable2[T, A1, A2],
        a1: A1,
        a2: A2,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: Startable3[T, A1, A2, A3],
        a1: A1,
        a2: A2,
        a3: A3,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: Startable4[T, A1, A2, A3, A4],
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: Startable5[T, A1, A2, A3, A4, A5],
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        a5: A5,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: TrioStartable0[T],
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: TrioStartable1[T, A1],
        a1: A1,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: TrioStartable2[T, A1, A2],
        a1: A1,
        a2: A2,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: TrioStartable3[T, A1, A2, A3],
        a1: A1,
        a2: A2,
        a3: A3,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: TrioStartable4[T, A1, A2, A3, A4],
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    @overload
    async def start(
        self,
        fn: TrioStartable5[T, A1, A2, A3, A4, A5],
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        a5: A5,
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> T: ...
    # END GENERATED by tools/gen_overloads.py (start overloads)
    async def start(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Spawn ``fn(*args, task_status=...)`` and wait until it reports ready
        with ``task_status.started(value)``; return ``value``.

        As anyio's ``TaskGroup.start`` and trio's ``nursery.start``, and with the
        same ``task_status`` parameter (annotate it ``anyio.abc.TaskStatus[T]``
        with the default ``anyio.TASK_STATUS_IGNORED``, or ``trio.TaskStatus[T]``
        with ``trio.TASK_STATUS_IGNORED``), so one function serves all three; the
        value's type flows to the caller. Unlike theirs, the task is
        the registry's from its start. A checkpoint.

        ``name``, ``daemon``, ``stop`` and ``timeout`` are as for :meth:`spawn`.

        Raises:
            Exception: the task's own failure, if it fails before it is ready (it
                counts as received: it is not reported again).
            RuntimeError: the task returned before it called ``started()``.
            TaskCancelled: the task was cancelled before it was ready.
            TypeError: ``fn`` is not an async function taking ``task_status``, or
                is a coroutine object.
            RegistryClosed: the registry does not take work.

        If the caller is cancelled while it waits, the task is cancelled too; once
        the task is ready, it runs on its own.

        .. versionadded:: 0.2

        .. versionchanged:: 0.3
           A ``task_status`` annotated with trio's own ``trio.TaskStatus[T]`` (as
           ``trio.serve_tcp``'s is) is typed too; it gave ``T = Never``.
           ``stop``.
        """
        refuse_if_coroutine(
            fn,
            "start",
            "start() calls the function with task_status=..., so it needs the "
            "function itself",
        )
        if name is not None or daemon is not False or timeout is not None:
            check_spawn_options(fn, "start", name, None, daemon, timeout, args)
        if stop is not None:
            _check_stop(fn, "start", daemon, stop, args)
        if self._state is not OPEN:
            # Refused here (a registry never opened has no backend), as spawn
            # would: follow-up work of its own tasks while it drains is welcome.
            self._check_may_spawn(None)
        if get_ident() != self._thread:
            self._refuse_thread(fn, "start")
        task_name = name_of(fn) if name is None else name
        status: TaskStatus[Any] = TaskStatus(self._backend.new_event(), task_name)
        coro = _call_with_status(fn, args, status)
        handle = self._spawn_task(coro, task_name, None, daemon, stop, timeout)
        handle.add_done_callback(status.ended)
        try:
            await handle.wait_as_awaiter_(status.event_)
        except BaseException:
            if not status.is_started:
                handle.cancel()
            raise
        if status.is_started:
            handle.unreceived_()  # it failed right after started(): not lost
            return status.value
        if handle.status_ is FINISHED:
            raise RuntimeError(
                f"task {task_name!r} returned before it called "
                "task_status.started(): start() waits for that call"
            )
        handle.outcome_()  # raises its failure, or TaskCancelled
        raise AssertionError(f"task {task_name!r} ended unready with a result")

    # -- introspection ----------------------------------------------------------------

    def statistics(self) -> RegistryStatistics:
        """Return a frozen snapshot of the counters (never blocks)."""
        return RegistryStatistics(
            spawned=self._spawned,
            queued=self._queued_count(),
            running=len(self._live),
            succeeded=self._succeeded,
            failed=self._failed,
            cancelled=self._cancelled,
            restarts=self._restarts,
            dropped=self._dropped,
        )

    def _queued_count(self) -> int:
        if self._pools:
            return sum(slots.queued for slots in self._queues())
        return 0 if self._slots is None else self._slots.queued

    def _queued_list(self) -> list[Handle[Any]]:
        """Every queued handle: the registry's own, then each pool's."""
        if self._pools:
            return [h for slots in self._queues()[::-1] for h in slots.queued_handles()]
        return [] if self._slots is None else list(self._slots.queued_handles())

    def __len__(self) -> int:
        """The number of live tasks: running (or cancelling) plus queued, those
        of its pools included."""
        return len(self._live) + self._queued_count()

    def __bool__(self) -> bool:
        """Always true, empty or not: ``registry or TaskRegistry()`` must never
        swap a registry that has no task yet for another (``__len__`` alone would
        make an empty one false).

        .. versionadded:: 0.3
        """
        return True

    def __iter__(self) -> Iterator[Handle[Any]]:
        """Iterate over a snapshot of the live handles: running first, then queued
        (the registry's own, then each pool's)."""
        return iter([*self._live, *self._queued_list()])

    def dump(self) -> str:
        """Return a readable tree of this registry's live tasks, and of registries
        opened inside them.

        One line per task: name, status, the restarts of a service, age and spawn
        site (recorded with ``debug=True``), and where it is suspended: its await
        chain, outermost first, leaving out tether's own frames. For a program that
        hangs, or to log from a signal handler; :func:`tether.dump` draws every
        open registry. Never blocks; reads only.

        .. versionadded:: 0.2
        """
        return draw([self._node(_snapshot(open_registries), time.monotonic())])

    def _node(self, others: list[TaskRegistry], now: float) -> Node:
        queued = _snapshot(self._queued_list)
        live = _snapshot(self._live.items)
        state = self._state
        label = (
            f"TaskRegistry {self._name!r} {state.name}"
            + (
                ""
                if state is NEW or state is CLOSED
                else f" for {now - self._opened_at:.1f} s"
            )
            + f": {len(live)} running, {len(queued)} queued"
            + ("" if self._slots is None else f" (limit {self._slots.limit})")
            + "".join(f"; {p.label_()}" for p in _snapshot(self._pools.values))
        )
        node = Node(label)
        for handle, task in live:
            child = Node(self._task_label(handle, now, task))
            child.children = [
                other._node(others, now) for other in others if other._opener is task
            ] + gathers_under(task, now)  # the children of a run_all it awaits
            node.children.append(child)
        node.children.extend(Node(self._task_label(h, now, None)) for h in queued)
        return node

    def _task_label(self, handle: Handle[Any], now: float, task: object) -> str:
        facts = [handle.status_.name]
        if handle in self._daemons:
            facts.append("daemon")
        annex = handle.annex_
        if annex is not None:
            if annex.pool is not None:
                facts.append(f"pool {annex.pool.name!r}")
            if annex.restarts:
                facts.append(f"restarted {annex.restarts} time(s)")
            if annex.born is not None:
                # A task spawned (on the loop's thread) after `now` was read, by a
                # dump() from another thread, is drawn as just born, never younger.
                facts.append(f"age {max(0.0, now - annex.born):.1f} s")
        if handle.spawned_at is not None:
            facts.append(f"spawned at {handle.spawned_at}")
        where = (
            ""
            if task is None
            else f": suspended at {await_chain(self._backend.coroutine_of(task))}"
        )
        return f"{handle.name_} " + ", ".join(facts) + where

    @staticmethod
    def forest_(now: float) -> tuple[list[Node], set[int]]:
        """What :func:`tether.dump` draws of the open registries: the tree of each
        one not opened inside a task of another (those are drawn under that task),
        and the ids of the backend tasks of them all."""
        registries = sorted(_snapshot(open_registries), key=lambda r: r._opened_at)
        nested = {id(task) for r in registries for task in _snapshot(r._live.values)}
        roots = [r for r in registries if id(r._opener) not in nested]
        return [r._node(registries, now) for r in roots], nested

    @property
    def name(self) -> str:
        """The registry's name."""
        return self._name

    # -- what tether's other modules ask of a registry (see "what a handle asks") ----

    @property
    def thread_(self) -> int:
        """The ident of the thread whose event loop runs the registry (0 before it
        opens): the error of a spawn from another thread names it."""
        return self._thread

    @property
    def backend_(self) -> object:
        """The backend of the run the registry is open in (tests check that one
        run's registries share it)."""
        return self._backend

    @property
    def body_scope_(self) -> object:
        """The cancel scope of the block's body, or ``None``: on asyncio's native
        scope it is made only when something first cancels the body (tests check
        that a block nothing cancels makes none)."""
        return self._body_scope

    @property
    def in_raise_mode_(self) -> bool:
        """Whether a task's failure ends the registry (``on_error="raise"``)."""
        policy = self._policy_made
        return policy is not None and policy.mode is OnErrorMode.RAISE

    def set_drain_timeout_(self, seconds: float) -> None:
        """Let the drain of the coming close wait at most ``seconds``, in place of
        ``shutdown_timeout`` (a web adapter's deadline); read by the close alone."""
        self._shutdown_timeout = seconds

    @property
    def state(self) -> RegistryState:
        """The registry's lifecycle state."""
        return self._state

    @property
    def limit(self) -> int | None:
        """The most tasks that run at once, or ``None``."""
        return None if self._slots is None else self._slots.limit

    def __repr__(self) -> str:
        limit = "" if self._slots is None else f" limit={self._slots.limit}"
        return (
            f"<tether.TaskRegistry {self._name!r} {self._state.name} "
            f"running={len(self._live)} queued={len(self) - len(self._live)}{limit}>"
        )

    # -- opening and closing -----------------------------------------------------------

    async def open(self) -> None:
        """Open the registry without a block: for objects whose start and close are
        separate methods (``start()`` / ``close()``).

        Not a checkpoint (on trio, a schedule point that cannot be cancelled: it
        starts the task that holds the registry's tasks in trio's task tree);
        binds nothing (use :meth:`bind`). Close it with :meth:`aclose`, from any
        task of the same event loop.

        Raises:
            RegistryClosed: the registry was opened before (registries are
                single-use).

        .. versionadded:: 0.2
        .. versionchanged:: 0.3
           On trio, a schedule point.
        """
        self._open_now()
        open_host = self._backend.open_system_host
        if open_host is not None:  # trio: the tasks are one host task's children
            host = self._host = await open_host(self._name)
            self._create_task, self._new_scope = host.create_task, host.new_scope

    def _open_now(self) -> None:
        """:meth:`open`'s work, which never suspends: the default registry of
        :mod:`tether._default` opens from sync code (a spawn)."""
        if self._state is not NEW:
            self._raise_closed(
                f"{self._state.name} and was entered again: a TaskRegistry is "
                "single-use (entered or opened once), make a new one"
            )
        backend = self._backend = current_backend()
        self._thread = backend.thread
        self._create_task = backend.create_task
        self._new_scope = backend.new_scope
        if self._own_context:
            self._opened_context = copy_context()
        self._opener = backend.current_task()
        self._opened_at = time.monotonic()
        self._state = OPEN
        open_registries.refs[id(self)] = ref(self)  # .add(self), inline

    async def __aenter__(self) -> Self:
        """Open the registry; unless it was made with ``ambient=False``, bind it as
        the ambient registry for the body.

        Not a checkpoint. Raises :exc:`~tether.RegistryClosed` if the registry was
        opened before (registries are single-use).
        """
        self._open_now()
        backend = self._backend
        if backend.open_host is not None:  # trio: the tasks are this task's children
            host = self._host = await backend.open_host()
            self._create_task, self._new_scope = host.create_task, host.new_scope
        # The body runs in this scope, so that a failure in raise mode can cancel
        # it: entered now, or made at first need where the backend can do that.
        opener = self._opener
        if backend.late_scope is None or opener is None:
            # (No task to make it for later: entering one says what is wrong.)
            body_scope = self._body_scope = backend.new_scope()
            body_scope.__enter__()
        else:
            self._body_task = opener
        # The body's context, and so every task spawned from it and their
        # descendants, counts as this registry's own work while it drains; and
        # unless ambient=False, the body's tether.spawn() comes here.
        ambient, lineage = bound.get()
        self._token = bound.set((self if self._ambient else ambient, (*lineage, self)))
        self._outcome_pending = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Close the registry: wait for the tasks (drain), cancel what is left, and
        raise as ``on_error`` says. Blocks until every task has ended."""
        original = exc
        token = self._token
        if token is not None:
            self._token = None
            bound.reset(token)
        body_scope = self._body_scope
        if body_scope is not None:  # else nothing ever cancelled the body
            self._body_scope = None
            try:
                if body_scope.__exit__(exc_type, exc, tb):
                    exc = None  # our own cancellation of the body, swallowed
            except BaseException as remaining:
                exc = remaining
        self._body_task = None
        policy = self._policy_made  # None: on_error="log", and nothing came yet
        if (
            exc is not None
            and policy is not None
            and policy.mode is OnErrorMode.RAISE
            and isinstance(exc, Exception)
        ):
            policy.add_failure(exc)
        host = self._host
        if host is None:
            if (
                policy is None
                and exc is None
                and not self._live
                and self._slots is None
                and not self._pools
                and self._state is OPEN
                and self._closed_event is None
            ):
                # A block with nothing left and nothing to raise: the idle close
                # of _close() (_close_idle()) inline, with no coroutine (a
                # short-lived registry's common end, issue #27 item 4).
                self._closed_event = _ALREADY_SET
                self._state = CLOSED
                open_registries.refs.pop(id(self), None)  # .discard(self), inline
                self._opener = self._opened_context = None
                backend = self._backend
                if backend.current_effective_deadline() == -math.inf:
                    # A host cancelled as the body ended sees it here, as below.
                    await backend.checkpoint_if_cancelled()
                self._outcome_pending = False
                return original is not None  # our own cancellation: swallowed
            return await self._close(exc, original, block=True)
        try:
            return await self._close(exc, original, block=True)
        finally:
            self._host = None
            await host.close()

    async def aclose(self) -> None:
        """Close the registry: drain, cancel what is left, and raise as ``on_error``
        says (the ``ExceptionGroup`` of raise mode, or a ``KeyboardInterrupt`` a task
        raised). The same shutdown as leaving ``async with``, from any task.

        A checkpoint; blocks until every task has ended. Called from one of the
        registry's own tasks (a "terminate" handler), it waits for every task but
        its caller, which goes on running until it returns. Idempotent: a second
        call while the registry drains cancels what is left at once (a second
        Ctrl+C) and waits for the close; on a closed registry it returns at once.
        A second call from one of the registry's own tasks never waits for
        itself: it waits for every task but the registry's own tasks inside
        ``aclose()``, then sees the cancellation the escalation gave it. Called
        in the body of the ``async with`` or from one of its tasks, it does not
        cancel the body.

        .. versionadded:: 0.2
        .. versionchanged:: 0.3
           A second call from one of the registry's own tasks no longer waits for
           itself; closing no longer cancels the body; leaving the block waits for
           the task that closed the registry.
        """
        state = self._state
        if state is NEW or (state is CLOSED and self._closed_event is None):
            self._state = CLOSED  # nothing was ever opened
            await anyio.lowlevel.checkpoint()
            return
        if self._closed_event is None:
            if self._host is None or self._outcome_pending:  # a block's host: its own
                await self._close(None, None)
                return
            host, self._host = self._host, None
            try:
                await self._close(None, None)
            finally:
                await host.close()
            return
        # A close is under way, or done: this is a second call.
        own = self._own_handle()
        if state is not CLOSED:
            self._begin_cancelling()  # a second Ctrl+C: cancel what is left now
        with anyio.CancelScope(shield=True):
            if own is None:
                await self._closed_waiter().wait()
                await self._wait_until_idle(())  # the closer, if it was a task
            elif state is not CLOSED:
                # One of ours: the close under way waits for this very task, so
                # waiting for the close would never return. Wait for every task
                # but those of ours inside aclose(), as the first closer does.
                self._add_closer(own)
                self.notify_if_idle_()
                try:
                    await self._wait_until_idle()
                finally:
                    self._closers.discard(own)
        # Level-triggered: a task of ours sees here the cancellation that closing
        # gave it, as at any checkpoint.
        await anyio.lowlevel.checkpoint()

    async def _close(
        self,
        exc: BaseException | None,
        original: BaseException | None,
        *,
        block: bool = False,
    ) -> bool:
        """The shutdown shared by ``__aexit__`` (``block``) and ``aclose()``."""
        if self._closed_event is not None:  # aclose() came first
            with anyio.CancelScope(shield=True):
                await self._closed_waiter().wait()
                # A task of ours that closed it may still run: the block never
                # leaves a task behind it.
                await self._wait_until_idle(())
            return self._outcome(exc, original, block)
        if (
            not self._live
            and self._state is OPEN
            and ((self._slots is None and not self._pools) or self._is_idle(()))
        ):
            self._close_idle()
            if exc is None and (
                self._policy_made is None or self._policy_made.base_exc is None
            ):
                # A host cancelled as the body ended sees it here, as below.
                await self._backend.checkpoint_if_cancelled()
            return self._outcome(exc, original, block)
        self._closed_event = _NOT_WAITED_FOR
        # A block closes in the task that opened it, never one of ours.
        own = self._closer = None if block else self._own_handle()
        spared: tuple[Handle[Any], ...] = ()
        if own is not None:
            spared = (own,)
            self._add_closer(own)
        host_cancelled = False
        if exc is None and self._state is OPEN:
            # -inf once cancelled (anyio's, without its dispatch)
            deadline = self._backend.current_effective_deadline()
            if deadline < math.inf and deadline <= self._backend.clock():
                # The host was cancelled as the body ended, and may not have seen
                # it yet (anyio delivers it at the host's next checkpoint): a drain
                # would let the tasks run on. Cancel them, then raise it below.
                host_cancelled = True
            else:
                self._state = DRAINING
                if self._daemons:
                    self._cancel_daemons()
                if logger.isEnabledFor(INFO):
                    self._shutdown_log.drain_started(
                        self._waited_for(), self._shutdown_timeout
                    )
                timeout = self._shutdown_timeout
                try:  # the drain: one coroutine less than a method of its own
                    await self._wait_logging(
                        "draining",
                        spared,
                        math.inf
                        if timeout is None
                        else self._backend.clock() + timeout,
                    )
                except BaseException as cancelled:  # the host, while draining
                    exc = cancelled
        if self._live or self._slots is not None or self._pools:
            # (Else the drain left nothing to cancel, nor any queue to close.)
            self._begin_cancelling()
            if not self._is_idle(spared):
                with anyio.CancelScope(shield=True):
                    await self._wait_logging("cancelling its tasks", spared)
        self._state = CLOSED
        open_registries.refs.pop(id(self), None)  # .discard(self), inline
        self._opener = self._opened_context = None
        self._closer = None
        if own is not None:
            self._closers.discard(own)
        if self._shutdown_log_made is not None:  # else it has nothing to say
            self._shutdown_log_made.closed()
        closed, self._closed_event = self._closed_event, _ALREADY_SET
        closed.set()
        if host_cancelled and (
            self._policy_made is None or self._policy_made.base_exc is None
        ):
            await anyio.lowlevel.checkpoint()  # raises the host's cancellation
        return self._outcome(exc, original, block)

    def _add_closer(self, own: Handle[Any]) -> None:
        """``own``, a task of ours, is inside ``aclose()``: no closer waits for it."""
        if self._closers is _NO_HANDLES:
            self._closers = set()
        self._closers.add(own)

    def _closed_waiter(self) -> Event:
        """The event a second closer waits on: set once the close is done."""
        event = self._closed_event
        if event is _NOT_WAITED_FOR:
            event = self._closed_event = self._backend.new_event()
        assert event is not None
        return event

    def _close_idle(self) -> None:
        """:meth:`_close` of a registry with nothing running or queued: no drain,
        no clock, no event (a short-lived registry's common end, issue #27 item
        4)."""
        self._closed_event = _ALREADY_SET
        if self._slots is not None or self._pools:
            self._begin_cancelling()  # wakes a waiter of spawn_when_free, if any
        self._state = CLOSED
        open_registries.refs.pop(id(self), None)  # .discard(self), inline
        self._opener = self._opened_context = None

    def _outcome(
        self, exc: BaseException | None, original: BaseException | None, block: bool
    ) -> bool:
        if block:  # the block's exit: nothing will raise a failure that comes later
            self._outcome_pending = False
        policy = self._policy_made
        if policy is None:  # on_error="log", and nothing came that needed it
            return plain_outcome(exc, original, self._backend.cancelled_exc)
        return policy.outcome(exc, original, self._backend.cancelled_exc)

    def _own_handle(self) -> Handle[Any] | None:
        """The handle of the running task, if it is one of ours."""
        if not self._live:
            return None
        current = self._backend.current_task()
        for handle, task in self._live.items():
            if task is current:
                return handle
        return None

    def _waited_for(self) -> list[Handle[Any]]:
        """What a drain waits for: every live task but the closer and daemons."""
        live = [*self._live, *self._queued_list()]
        return [h for h in live if h is not self._closer and h not in self._daemons]

    async def _wait_logging(
        self,
        phase: str,
        spared: tuple[Handle[Any], ...],
        until: float = math.inf,
    ) -> None:
        """Wait until idle but for ``spared`` (the closer, if it is one of ours),
        or until the clock reads ``until``; every few seconds, a WARNING of what
        still runs."""
        if self._is_idle(spared):
            return
        backend = self._backend
        clock = backend.clock
        started = now = clock()
        warn_at = now + STILL_WAITING_EVERY
        while now < until:
            event = self._idle_event
            if event is None:
                event = self._idle_event = backend.new_wakeup()
            # Woken when the registry may be idle, or by the timer at the
            # earlier of the next WARNING and ``until``.
            await backend.wait_until(
                min(warn_at, until), self._wake_idle_waiters, event.wait
            )
            if self._is_idle(spared):
                return
            now = clock()
            if warn_at <= now < until:  # at the deadline, no WARNING: it ends
                warn_at = now + STILL_WAITING_EVERY
                self._shutdown_log.still_waiting(
                    phase,
                    now - started,
                    [
                        (h, self._backend.coroutine_of(task))
                        for h, task in self._live.items()
                        if h not in spared
                    ],
                )

    def _begin_cancelling(self) -> None:
        if self._state is RegistryState.CANCELLING or self._state is CLOSED:
            return
        self._state = RegistryState.CANCELLING
        self._cancel_everything(closing=True)

    def _end_everything(self) -> None:
        """A failure in raise mode, or a KeyboardInterrupt: cancel every task and
        the body. (Closing alone, by ``aclose()`` in the body or from a task,
        leaves the body running: its spawns then raise ``RegistryClosed``.)"""
        self._begin_cancelling()
        scope = self._body_scope
        if scope is None and self._body_task is not None:  # its first need
            late_scope = self._backend.late_scope
            assert late_scope is not None
            scope = self._body_scope = late_scope(self._body_task)
        if scope is not None:
            scope.cancel()

    def _cancel_daemons(self) -> None:
        """Closing has begun: daemon tasks are cancelled, not waited for; those
        spawned with ``stop="after-drain"`` go on until the drain ends."""
        late = self._after_drain
        for handle in list(self._daemons):
            if handle not in late:
                self._cancel_one(handle)

    def _left_open_at_loop_end(self, handle: Handle[Any]) -> None:
        if self._warned:
            return
        self._warned = True
        self._shutdown_log.left_open_at_loop_end([h.name_ for h in self], handle.name_)
        # The loop cancels every task left; what waits in the queue is dropped,
        # never started in a loop that is ending.
        self._begin_cancelling()

    def __del__(self) -> None:
        try:
            state = self._state
        except AttributeError:  # __init__ refused its arguments
            return
        if state is CLOSED or state is NEW:
            return
        open_registries.discard(self)  # its id may be another registry's next
        if (state is OPEN or state is DRAINING) and not self._warned:
            warn_left_open(
                self._name,
                "was garbage-collected while still open",
                [h.name_ for h in self],
            )


# -- pools ----------------------------------------------------------------------
#
# Pool: a limit for one kind of work inside a registry.
#
# A registry's ``limit`` counts every task spawned into it, follow-up work included:
# with ``limit=2``, the notifications two running jobs spawn wait behind the queued
# jobs. A pool (``registry.pool("jobs", limit=2)``) gives one kind of work its own
# slots and queue, while its tasks stay the registry's in every other way: they
# drain and are cancelled with it, their failures go to its ``on_error``, its
# hooks see them, ``statistics()`` and ``dump()`` count them, and a pool task's
# :func:`tether.spawn` goes to the registry, so its follow-ups never wait for the
# pool's slots.
#
# The pool owns a :class:`~tether._slots.Slots` and the set of its running tasks;
# the registry spawns, launches and ends the tasks. A pool task carries the pool in
# its :class:`~tether._handle.Annex`, and a done-callback, first among its
# callbacks, hands the freed slot to the next in the pool's line.


@final
class Pool:
    """A limit for one kind of work inside a :class:`~tether.TaskRegistry`: at most
    ``limit`` of its tasks run at once, the rest wait in its own FIFO queue (at
    most ``max_pending`` of them).

    Made by :meth:`TaskRegistry.pool() <tether.TaskRegistry.pool>`
    (``registry.pool("jobs", limit=2)``); calling ``tether.Pool(...)`` raises
    :exc:`TypeError`, and the type is public for annotations. A pool has no
    lifetime of its own: its tasks are the registry's
    tasks in every other way. They drain and are cancelled when the registry
    closes (queued ones too), their failures go to the registry's ``on_error``,
    the registry's hooks see them, and the registry's ``statistics()``,
    ``len()``, iteration and ``dump()`` count them. A pool task's
    :func:`tether.spawn` spawns into the registry, not the pool, so the
    follow-up work of a job never waits for the pool's slots.

    .. versionadded:: 0.3
    """

    __slots__ = (
        "_cancelled",
        "_failed",
        "_name",
        "_registry",
        "_spawned",
        "_succeeded",
        "dropped_",
        "running_",
        "slots_",
    )

    _registry: TaskRegistry
    _name: str
    slots_: Slots
    running_: set[Handle[Any]]
    _spawned: int
    _succeeded: int
    _failed: int
    _cancelled: int
    dropped_: int

    def __init__(self, *args: object, **kwargs: object) -> None:
        # A pool made apart from its registry would pass pool()'s checks by and
        # be unknown to the registry's close, statistics and dump.
        raise TypeError(
            "tether.Pool is not constructed directly: make a pool with "
            'registry.pool("name", limit=N), which registers it with the '
            "registry whose tasks it limits"
        )

    @classmethod
    def new_(
        cls, registry: TaskRegistry, name: str, limit: int, max_pending: int | None
    ) -> Pool:
        """The pool :meth:`TaskRegistry.pool` makes (its arguments checked there)."""
        self = object.__new__(cls)
        self._registry = registry
        self._name = name
        self.slots_ = Slots(limit, max_pending, name)
        self.running_ = set()
        self._spawned = self._succeeded = self._failed = self._cancelled = 0
        self.dropped_ = 0
        return self

    # -- spawning ------------------------------------------------------------------

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (Pool.spawn)
    @overload
    def spawn(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    # END GENERATED by tools/gen_overloads.py (Pool.spawn)
    def spawn(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Start a task of the pool now, or queue it if all the pool's slots are
        busy; return its handle. Sync; never blocks.

        As :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`, with the
        pool's slots and queue in place of the registry's.

        Raises:
            TypeError: as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`.
            RegistryClosed: the registry is not open (see its lifecycle).
            RegistryFull: every slot of the pool is busy and its queue is at
                ``max_pending``.
            RuntimeError: called from a thread other than the event loop's.
        """
        return self._registry.spawn_pooled_(
            self, "spawn", fn, args, kwargs, name, context, daemon, stop, timeout
        )

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (Pool.try_spawn)
    @overload
    def try_spawn(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T] | None: ...
    @overload
    def try_spawn(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T] | None: ...
    # END GENERATED by tools/gen_overloads.py (Pool.try_spawn)
    def try_spawn(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any] | None:
        """Offer work to the pool: spawn it as :meth:`spawn` does while the
        registry is open, and drop it, returning ``None``, once closing has
        begun. Sync; never blocks.

        As :meth:`TaskRegistry.try_spawn <tether.TaskRegistry.try_spawn>`, with
        the pool's slots and queue: for a reader that feeds the pool's jobs and
        must not have :exc:`~tether.RegistryClosed` raised into it while the
        registry closes. A drop is logged at DEBUG and counted in
        ``statistics().dropped``, the pool's and the registry's.

        ``None`` means only that the registry is closing or closed. A full
        pool still raises :exc:`~tether.RegistryFull`, as ``spawn`` does, as
        ``put_nowait`` raises ``QueueFull`` and anyio's ``send_nowait`` raises
        ``WouldBlock``: a full queue is backpressure, and a reader that sheds
        load under it says so (``except RegistryFull``); one that waits uses
        :meth:`spawn_when_room`.

        Returns:
            The task's handle (running or queued), or ``None`` if the registry
            is draining, cancelling or closed.

        Raises:
            TypeError: as :meth:`TaskRegistry.spawn
                <tether.TaskRegistry.spawn>`, whether the work is taken or
                dropped.
            RegistryClosed: the registry has not been opened yet.
            RegistryFull: every slot of the pool is busy and its queue is at
                ``max_pending``.
            RuntimeError: called from a thread other than the event loop's
                (use :meth:`spawn_threadsafe`).

        .. versionadded:: 0.3
        """
        return self._registry.offer_(
            self, fn, args, kwargs, name, context, daemon, stop, timeout
        )

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (Pool.when_free)
    @overload
    async def spawn_when_free(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_free(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    # END GENERATED by tools/gen_overloads.py (Pool.when_free)
    async def spawn_when_free(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Wait until one of the pool's slots is free, then spawn into it.

        As :meth:`TaskRegistry.spawn_when_free
        <tether.TaskRegistry.spawn_when_free>`, with the pool's slots: a
        checkpoint; callers wait FIFO in one line with the pool's queued tasks.
        """
        return await self._registry.spawn_when_free_(
            self,
            "spawn_when_free",
            fn,
            args,
            kwargs,
            name,
            context,
            daemon,
            stop,
            timeout,
        )

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (Pool.when_room)
    @overload
    async def spawn_when_room(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_room(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    # END GENERATED by tools/gen_overloads.py (Pool.when_room)
    async def spawn_when_room(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Wait until the task can start or wait in the pool's queue, then spawn
        it: aiojobs' ``spawn``, which waits while the pending queue is full.

        As :meth:`TaskRegistry.spawn_when_room
        <tether.TaskRegistry.spawn_when_room>`, with the pool's queue.
        """
        return await self._registry.spawn_when_room_(
            self,
            "spawn_when_room",
            fn,
            args,
            kwargs,
            name,
            context,
            daemon,
            stop,
            timeout,
        )

    # BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (Pool.threadsafe)
    @overload
    def spawn_threadsafe(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[Handle[T]]: ...
    @overload
    def spawn_threadsafe(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[Handle[T]]: ...
    # END GENERATED by tools/gen_overloads.py (Pool.threadsafe)
    def spawn_threadsafe(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> concurrent.futures.Future[Handle[Any]]:
        """Spawn into the pool from another thread; return a future of the
        handle. Never blocks.

        As :meth:`TaskRegistry.spawn_threadsafe
        <tether.TaskRegistry.spawn_threadsafe>`, with the pool's slots and
        queue: the spawn happens on the registry's event loop thread, soon, as
        :meth:`spawn` would do it there, and the future resolves to the handle
        (running or queued), or to the exception the spawn raised
        (:exc:`~tether.RegistryClosed`, or :exc:`~tether.RegistryFull` when the
        pool's queue is at ``max_pending``). Arguments are checked here, at
        once. There is no waiting form for threads: a thread that must wait for
        room waits on the future and tries again, or hands the work to a task
        of the registry that awaits :meth:`spawn_when_room`.

        Raises:
            TypeError: as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`.
            RuntimeError: called on the event loop's own thread (use
                :meth:`spawn`), or the event loop is closed.
            RegistryClosed: the registry was never entered, or has closed.

        .. versionadded:: 0.3
        """
        return self._registry.spawn_threadsafe_(
            self, fn, args, kwargs, name, daemon, stop, timeout
        )

    # -- what the registry asks of its pool ------------------------------------------

    def admit_(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
        copy: Callable[[], Context],
    ) -> None:
        """Start a new task of the pool, or queue it (or refuse it, closing
        ``coro``, if the queue is full). ``context`` is the registry's fresh copy
        for this task, or None; ``copy`` makes the context a queued task starts in
        when it is None."""
        slots = self.slots_
        if slots.free(len(self.running_)):
            self._registry.launch_(handle, coro, context)
            self.running_.add(handle)
        else:
            slots.enqueue(
                handle,
                coro,
                copy() if context is None else context,
                self._registry.name,
            )
        self._spawned += 1

    def task_ended_(self, handle: Handle[Any]) -> None:
        """The done-callback of every task of the pool, first of its callbacks."""
        status = handle.status_
        if status is FINISHED:
            self._succeeded += 1
        elif status is FAILED:
            self._failed += 1
        else:  # CANCELLED: every task ends in one of the three
            self._cancelled += 1
        if handle in self.running_:
            self.running_.discard(handle)
            self.slot_freed_()

    def slot_freed_(self) -> None:
        """Hand a free slot to the next in the pool's line, or let the registry
        note that it may be idle."""
        entry = self.slots_.next_in_line()
        if type(entry) is Handle:
            coro, context = entry.value_
            entry.value_ = None
            self._registry.launch_(entry, coro, context)
            self.running_.add(entry)
        elif entry is None:
            self._registry.notify_if_idle_()

    def busy_(self) -> bool:
        """Whether anything waits in the pool's queue or holds a reserved place."""
        slots = self.slots_
        return bool(slots.queued or slots.reserved or slots.room_reserved)

    # -- introspection ----------------------------------------------------------------

    def statistics(self) -> RegistryStatistics:
        """Return a frozen snapshot of the pool's own counters (never blocks);
        its tasks, and the work :meth:`try_spawn` dropped, are in the
        registry's counters too. ``restarts`` is always 0: services are not
        spawned into pools."""
        return RegistryStatistics(
            spawned=self._spawned,
            queued=self.slots_.queued,
            running=len(self.running_),
            succeeded=self._succeeded,
            failed=self._failed,
            cancelled=self._cancelled,
            dropped=self.dropped_,
        )

    def __len__(self) -> int:
        """The number of the pool's live tasks: running plus queued."""
        return len(self.running_) + self.slots_.queued

    def __bool__(self) -> bool:
        """Always true, empty or not, as a registry is.

        .. versionadded:: 0.3
        """
        return True

    def __iter__(self) -> Iterator[Handle[Any]]:
        """Iterate over a snapshot of the pool's live handles: running first, then
        queued."""
        return iter([*self.running_, *self.slots_.queued_handles()])

    @property
    def name(self) -> str:
        """The pool's name, unique in its registry."""
        return self._name

    @property
    def limit(self) -> int:
        """The most tasks of the pool that run at once."""
        return self.slots_.limit

    @property
    def max_pending(self) -> int | None:
        """The most tasks that wait in the pool's queue, or ``None``."""
        return self.slots_.max_pending

    @property
    def registry(self) -> TaskRegistry:
        """The registry the pool's tasks belong to."""
        return self._registry

    def label_(self) -> str:
        """The pool as ``dump()`` names it under its registry."""
        return (
            f"pool {self._name!r}: {len(self.running_)} running, "
            f"{self.slots_.queued} queued (limit {self.slots_.limit})"
        )

    def __repr__(self) -> str:
        return (
            f"<tether.Pool {self._name!r} of {self._registry.name!r} "
            f"running={len(self.running_)} queued={self.slots_.queued} "
            f"limit={self.slots_.limit}>"
        )


def dump() -> str:
    """Return a readable tree of every open registry and its live tasks, as
    :meth:`TaskRegistry.dump` draws one, with registries opened inside a task
    nested under that task.

    Sees the registries of every event loop of the process; called from one loop,
    its view of another thread's registries is a snapshot taken without locks.
    Returns ``"no open TaskRegistry"`` when there is none.

    .. versionadded:: 0.2
    """
    now = time.monotonic()
    nodes, nested = TaskRegistry.forest_(now)
    nodes += [node for more in dump_extras for node in more(now)]
    nodes += gather_roots(nested, now)  # gathers awaited outside every registry
    return draw(nodes) if nodes else "no open TaskRegistry"


def _snapshot(items: Iterable[T] | Callable[[], Iterable[T]]) -> list[T]:
    """A list of ``items``, taken again if another thread changed them meanwhile
    (``dump()`` may be called from a watchdog thread)."""
    while True:
        try:
            return list(items() if callable(items) else items)
        except RuntimeError:  # changed size during iteration
            continue


class _Binding(Generic[R]):
    """The context manager returned by ``registry.bind()``."""

    __slots__ = ("_registry", "_token")

    def __init__(self, registry: R) -> None:
        self._registry = registry

    def __enter__(self) -> R:
        self._token = bound.set((self._registry, bound.get()[1]))
        return self._registry

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        bound.reset(self._token)


def _check_options(
    name: object,
    limit: object,
    max_pending: object,
    shutdown_timeout: object,
    debug: object,
    ambient: object,
) -> None:
    """Refuse a bad option of :class:`TaskRegistry` (``on_error``, ``hooks`` and
    ``context`` are looked at where they are used)."""
    check_name("TaskRegistry", "name", name)
    check_flag("TaskRegistry", "debug", debug)
    check_flag("TaskRegistry", "ambient", ambient)
    if limit is not None:
        check_count("TaskRegistry", "limit", limit, 1, ", or None for no limit")
    if max_pending is not None:
        if limit is None:
            raise ValueError(
                f"TaskRegistry(max_pending={max_pending!r}) needs a limit: "
                f"TaskRegistry(limit=10, max_pending={max_pending!r})"
            )
        check_count(
            "TaskRegistry",
            "max_pending",
            max_pending,
            0,
            ", or None for an unbounded queue",
        )
    check_seconds(
        "TaskRegistry",
        "shutdown_timeout",
        shutdown_timeout,
        " (how long to wait for tasks at shutdown), or None to wait without limit",
    )


def _call_with_status(
    fn: Callable[..., Any], args: tuple[Any, ...], status: TaskStatus[Any]
) -> Coroutine[Any, Any, Any]:
    """``fn(*args, task_status=status)``, checked like every spawn's call."""
    if not is_async_callable(fn):
        coroutine_from(fn, args, "start").close()  # raises the teaching error
    try:
        coro = fn(*args, task_status=status)
    except TypeError as exc:
        if "task_status" in str(exc):
            raise TypeError(
                f"start({describe(fn)}, ...): {exc}. start() passes "
                "task_status=...: give the function a parameter `task_status: "
                "anyio.abc.TaskStatus[T] = anyio.TASK_STATUS_IGNORED` and call "
                "task_status.started(value) once it is ready"
            ) from None
        raise arguments_misfit("start", fn, exc) from None
    return checked_coroutine("start", fn, coro)


def _check_stop(
    fn: object, api: str, daemon: object, stop: object, args: tuple[object, ...]
) -> None:
    """Refuse a ``stop`` that is not one of the two words, that is given to a
    task that is not a daemon (which is always drained), or that names a keyword
    parameter of ``fn`` too."""
    if stop == "on-close" or stop == "after-drain":
        if daemon is True:
            refuse_ambiguous_options(fn, args, api, {"stop": stop})
            return
        error: type[Exception] = ValueError
        why = (
            f"stop={stop!r}) without daemon=True: stop says when a daemon is "
            "cancelled, and a task that is not a daemon is always waited for. "
            f"Write {api}(..., daemon=True, stop={stop!r})"
        )
    else:
        error = ValueError if isinstance(stop, str) else TypeError
        why = (
            f"stop={stop!r}): use 'on-close' (the daemon is cancelled as soon as "
            "closing begins) or 'after-drain' (once the tasks that are not daemons "
            "have ended, or the drain's deadline has passed)"
        )
    close_if_coroutine(fn)
    raise error(f"{api}(..., {why}")
