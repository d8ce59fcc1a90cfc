"""Where a failure goes: to whoever awaits the handle, else to the log, once."""

import asyncio
import logging
import sys

import tether

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


class OneLine(logging.Formatter):
    def formatException(self, ei: object) -> str:
        return "  Traceback (most recent call last): ..."


handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(OneLine("%(levelname)s %(name)s: %(message)s"))
logging.basicConfig(handlers=[handler])


async def charge(amount: int) -> int:
    await asyncio.sleep(0)
    if amount < 0:
        raise ValueError(f"cannot charge {amount}")
    return amount


async def main() -> None:
    async with tether.TaskRegistry(name="app", shutdown_timeout=10) as tasks:
        awaited = tasks.spawn(charge, -1)
        try:
            await awaited  # the task's own exception, as with an asyncio.Task
        except ValueError as exc:
            print(f"awaited: {exc!r}")

        tasks.spawn(charge, -2, name="forgotten")  # nobody awaits it
        ok = tasks.spawn(charge, 5)  # siblings keep running (on_error="log")
        print(f"sibling: {await ok}")

    try:
        async with tether.TaskRegistry(on_error="raise", shutdown_timeout=10) as tasks:
            tasks.spawn(charge, -3)
            await asyncio.sleep(1)  # cancelled by the failure
    except ExceptionGroup as group:
        print(f"raise mode: {group.exceptions!r}")


asyncio.run(main())
