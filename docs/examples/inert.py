"""A coroutine does nothing until awaited; a task starts at the creator's next await."""

import asyncio


async def job(name: str) -> str:
    print(f"  {name} runs")
    return name


async def main() -> None:
    print("1. a coroutine object is inert:")
    coro = job("coroutine")
    print("  made it; nothing ran")
    await coro  # now it runs, inside this await

    print("2. a task starts at its creator's next await:")
    task = asyncio.create_task(job("task"))
    print("  made it; nothing ran yet")
    await asyncio.sleep(0)  # any await that suspends lets the task run
    print(f"  after the await: task done = {task.done()}")

    print("3. gather wraps coroutines in tasks itself:")
    results = await asyncio.gather(job("first"), job("second"))
    print(f"  {results}")


asyncio.run(main())
