"""spawn never runs the task inside the call: it first runs at the next checkpoint."""

import asyncio

import anyio.lowlevel

import tether


async def main() -> None:
    order: list[str] = []

    async def job() -> None:
        order.append("job runs")

    async with tether.TaskRegistry(shutdown_timeout=10) as tasks:
        tasks.spawn(job)
        order.append("after spawn")
        await anyio.lowlevel.checkpoint()
        print(order)


asyncio.run(main())
