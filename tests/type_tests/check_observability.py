"""Types of hooks, the context policy and dump(): never executed, checked by mypy
--strict and pyright strict (negatives carry mypy's error code).
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

import tether


class Counting(tether.Hooks):
    def __init__(self) -> None:
        self.ended_count = 0

    def ended(self, handle: tether.Handle[Any], /) -> None:
        self.ended_count += 1


def registry_options() -> None:
    tether.TaskRegistry(hooks=Counting())
    tether.TaskRegistry(hooks=None, context="registry")
    tether.TaskRegistry(context="spawner")
    tether.TaskRegistry(context="request")  # type: ignore[arg-type]
    tether.TaskRegistry(hooks=object())  # type: ignore[arg-type]


def dumps(tasks: tether.TaskRegistry) -> None:
    assert_type(tasks.dump(), str)
    assert_type(tether.dump(), str)


class WrongSignature(tether.Hooks):
    def started(self, handle: int, /) -> None:  # type: ignore[override]
        ...
