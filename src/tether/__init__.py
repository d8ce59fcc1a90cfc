"""tether: typed structured concurrency over anyio.

The public names live in private modules, one concept each: the registry
(``_registry``) and the parts it owns (``_slots``, ``_policy``, and the backend seam
``_backend`` with ``_asyncio`` and ``_trio``), the task handle (``_handle``), ambient
spawning (``_spawn``, over the context variables of ``_context``), the deferred
gather family (``_gather``, ``_streams``, both over one ``_engine``) and the
exceptions (``_exceptions``). The command line is in ``_cli`` and is not imported
here, nor is ``_version``, which ``__version__`` reads on first use.
"""

import typing as _typing

from ._adopt import Adoption as Adoption
from ._adopt import adopt_tasks as adopt_tasks
from ._default import RequireRegistry as RequireRegistry
from ._default import require_registry as require_registry
from ._exceptions import NoRegistry as NoRegistry
from ._exceptions import RegistryClosed as RegistryClosed
from ._exceptions import RegistryFull as RegistryFull
from ._exceptions import TaskCancelled as TaskCancelled
from ._exceptions import TaskNotFinished as TaskNotFinished
from ._exceptions import TetherError as TetherError
from ._gather import Work as Work
from ._gather import race as race
from ._gather import run_all as run_all
from ._gather import settle_all as settle_all
from ._handle import Handle as Handle
from ._handle import Status as Status
from ._hooks import Hooks as Hooks
from ._nursery import RegistryNursery as RegistryNursery
from ._nursery import as_nursery as as_nursery
from ._registry import OnError as OnError
from ._registry import Pool as Pool
from ._registry import RegistryState as RegistryState
from ._registry import RegistryStatistics as RegistryStatistics
from ._registry import Stop as Stop
from ._registry import TaskRegistry as TaskRegistry
from ._registry import dump as dump
from ._signals import CancelOnSignal as CancelOnSignal
from ._signals import cancel_on_signal as cancel_on_signal
from ._spawn import current_registry as current_registry
from ._spawn import spawn as spawn
from ._streams import Completions as Completions
from ._streams import amap as amap
from ._streams import as_completed as as_completed

__all__ = [
    "Adoption",
    "CancelOnSignal",
    "Completions",
    "Handle",
    "Hooks",
    "NoRegistry",
    "OnError",
    "Pool",
    "RegistryClosed",
    "RegistryFull",
    "RegistryNursery",
    "RegistryState",
    "RegistryStatistics",
    "RequireRegistry",
    "Status",
    "Stop",
    "TaskCancelled",
    "TaskNotFinished",
    "TaskRegistry",
    "TetherError",
    "Work",
    "adopt_tasks",
    "amap",
    "as_completed",
    "as_nursery",
    "cancel_on_signal",
    "current_registry",
    "dump",
    "race",
    "require_registry",
    "run_all",
    "settle_all",
    "spawn",
]

if _typing.TYPE_CHECKING:
    __version__: str
else:

    def __getattr__(name: str) -> str:
        # ``__version__`` is read on first use: importlib.metadata would cost more
        # than the rest of ``import tether``. Hidden from type checkers, which would
        # otherwise accept any misspelt attribute of the module as a ``str``.
        if name == "__version__":
            from ._version import version

            global __version__
            __version__ = version()
            return __version__
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
