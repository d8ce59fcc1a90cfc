"""Retries: tenacity around a spawned body, retrying only what is worth retrying."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def with_retries(fetch: Callable[[str], Awaitable[bytes]], url: str) -> bytes:
    """``fetch(url)``, tried up to 5 times on connection errors and timeouts.

    Name the exceptions to retry: tenacity's default retries every ``Exception``,
    and ``tether.TaskCancelled`` (awaiting a task that was cancelled) is one. A
    cancellation of this task itself is not an ``Exception`` and is never retried.
    ``sleep=anyio.sleep`` makes the waits work on asyncio and trio alike.
    """
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((ConnectionError, TimeoutError)),
        stop=stop_after_attempt(5),
        wait=wait_random_exponential(multiplier=0.1, max=5),
        sleep=anyio.sleep,
        reraise=True,
    ):
        with attempt:
            return await fetch(url)
    raise AssertionError("unreachable: reraise=True raises the last failure")


# In the application: the task is tether's, the retries are tenacity's.
#
#     tether.spawn(with_retries, client.get, "https://example.org/feed")
