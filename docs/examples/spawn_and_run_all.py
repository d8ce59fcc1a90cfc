"""Eager spawn and deferred run_all, step by step."""

import asyncio

import tether


async def fetch(name: str) -> str:
    print(f"  fetch {name} starts")
    await asyncio.sleep(0)  # stands for real I/O
    print(f"  fetch {name} ends")
    return name.upper()


async def render() -> None:
    print("  render starts")
    await asyncio.sleep(0)
    print("  render ends")


async def main() -> None:
    print("eager: spawn, then do other work")
    async with tether.TaskRegistry(name="app", shutdown_timeout=10) as tasks:
        user = tasks.spawn(fetch, "user")  # a Handle[str]; nothing runs yet
        await render()  # render runs up to its first await, then fetch user starts
        print(f"  got {await user}")

    print("deferred: run_all at one point")
    user_name, orders = await tether.run_all(fetch("user"), fetch("orders"))
    print(f"  got {user_name} and {orders}")


asyncio.run(main())
