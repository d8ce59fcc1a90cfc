import asyncio


async def send_email(user: str) -> None:
    print(f"mail to {user}")


async def fetch(url: str) -> bytes:
    return url.encode()


async def handle(user: str) -> None:
    asyncio.create_task(send_email(user))


async def pages(urls: list[str]) -> list[bytes]:
    tasks = [asyncio.create_task(fetch(url)) for url in urls]
    return await asyncio.gather(*tasks)
