import asyncio
from functools import partial

import tether


async def send_email(user_id: int) -> str:
    await asyncio.sleep(0.01)  # stands for a call to a mail server
    return f"sent to user {user_id}"


async def fetch(url: str) -> int:
    await asyncio.sleep(0.01)  # stands for an HTTP request
    return len(url)


async def main(urls: list[str]) -> None:
    async with tether.TaskRegistry(name="app", shutdown_timeout=10) as tasks:
        receipt = tasks.spawn(send_email, 42)  # eager: runs from our next await
        sizes = await tether.run_all(*(partial(fetch, u) for u in urls), limit=10)
        print(await receipt, "|", len(sizes), "pages")  # Handle[str], tuple[int, ...]
    # leaving the block waited for every task (and cancelled stragglers): none escapes


asyncio.run(main([f"https://example.com/{n}" for n in range(100)]))
