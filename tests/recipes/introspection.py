"""asyncio's own introspection: on asyncio, each running tether task is an asyncio
task with the handle's name, so asyncio's tools see it."""

from __future__ import annotations

import asyncio


def stacks_by_name() -> dict[str, list[str]]:
    """The running asyncio tasks, by name, each with where it is suspended
    (innermost frame last): ``asyncio.all_tasks()`` and ``Task.get_stack()``."""
    stacks: dict[str, list[str]] = {}
    for task in asyncio.all_tasks():
        stacks[task.get_name()] = [
            f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})"
            for frame in task.get_stack()
        ]
    return stacks


# tether.dump() draws the same, on every backend, with await chains and the tree
# of registries; on Python 3.14, `python -m asyncio pstree PID` also works.
