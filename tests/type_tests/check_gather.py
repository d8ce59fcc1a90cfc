"""Types of the gather family: never executed, checked by mypy --strict and pyright
strict.

Positives use ``assert_type``. Negatives carry mypy's exact error code; pyright
honours any ``# type: ignore``, and both tools report an ignore that is no longer
needed, so a negative that stops failing fails the check.
"""

from __future__ import annotations

import functools

from typing_extensions import assert_type

import tether


async def fetch_int() -> int:
    return 1


async def fetch_str() -> str:
    return ""


async def fetch_bytes(size: int) -> bytes:
    return b"\0" * size


async def fetch_float() -> float:
    return 0.0


def compute() -> int:
    return 1


async def run_all_types_each_position(tasks: tether.TaskRegistry) -> None:
    assert_type(await tether.run_all(fetch_int()), tuple[int])
    assert_type(await tether.run_all(fetch_int(), fetch_str()), tuple[int, str])

    handle = tasks.spawn(fetch_str)
    assert_type(handle, tether.Handle[str])
    partial = functools.partial(fetch_bytes, 3)
    assert_type(
        await tether.run_all(fetch_int(), handle, partial), tuple[int, str, bytes]
    )

    ten = await tether.run_all(
        fetch_int(),
        fetch_str(),
        functools.partial(fetch_bytes, 1),
        fetch_float(),
        handle,
        fetch_int(),
        fetch_str(),
        functools.partial(fetch_bytes, 2),
        fetch_float(),
        fetch_int(),
        limit=3,
        per_second=10.0,
        burst=2,
        timeout=5,
    )
    assert_type(ten, tuple[int, str, bytes, float, str, int, str, bytes, float, int])

    eleven = await tether.run_all(*(fetch_int() for _ in range(11)))
    assert_type(eleven, tuple[int, ...])
    assert_type(
        await tether.run_all(
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
            fetch_int(),
        ),
        tuple[int, ...],
    )


async def settle_all_types_each_position_as_a_union(tasks: tether.TaskRegistry) -> None:
    assert_type(await tether.settle_all(fetch_int()), tuple[int | Exception])
    assert_type(
        await tether.settle_all(fetch_int(), fetch_str(), timeout=1.0),
        tuple[int | Exception, str | Exception],
    )
    assert_type(
        await tether.settle_all(
            tasks.spawn(fetch_str), functools.partial(fetch_bytes, 3)
        ),
        tuple[str | Exception, bytes | Exception],
    )
    many = await tether.settle_all(*(fetch_int() for _ in range(11)))
    assert_type(many, tuple[int | Exception, ...])


async def race_returns_the_common_type(tasks: tether.TaskRegistry) -> None:
    assert_type(await tether.race(fetch_int(), fetch_int()), int)
    assert_type(
        await tether.race(tasks.spawn(fetch_str), functools.partial(fetch_str)), str
    )


async def as_completed_and_amap_yield_typed_pairs(tasks: tether.TaskRegistry) -> None:
    async with tether.as_completed(fetch_int(), tasks.spawn(fetch_int)) as done:
        assert_type(done, tether.Completions[int, int])
        async for index, result in done:
            assert_type(index, int)
            assert_type(result, int)

    async with tether.amap(fetch_bytes, [1, 2, 3], limit=2) as results:
        assert_type(results, tether.Completions[int, bytes])
        async for item, page in results:
            assert_type(item, int)
            assert_type(page, bytes)


async def bad_inputs_are_type_errors() -> None:
    await tether.run_all(42)  # type: ignore[call-overload]
    await tether.run_all(fetch_int(), compute)  # type: ignore[arg-type]
    await tether.run_all(fetch_int(), limit="3")  # type: ignore[call-overload]
    await tether.settle_all(compute)  # type: ignore[arg-type]
    await tether.race(fetch_int(), 42)  # type: ignore[arg-type]
    tether.as_completed(compute)  # type: ignore[arg-type]
    tether.as_completed(fetch_int(), limit="3")  # type: ignore[arg-type]
    tether.amap(compute, [1], limit=2)  # type: ignore[arg-type]
    tether.amap(fetch_bytes, [1], limit="3")  # type: ignore[call-overload]


async def item_timeout_and_return_exceptions(settle: bool) -> None:
    assert_type(
        await tether.run_all(fetch_int(), fetch_str(), item_timeout=3.5),
        tuple[int, str],
    )
    assert_type(
        await tether.settle_all(fetch_int(), item_timeout=2),
        tuple[int | Exception],
    )
    # Without return_exceptions (or with False) each result is the plain type;
    # with True it may be the item's exception, as in settle_all's tuple.
    async with tether.amap(fetch_bytes, [1], limit=2, item_timeout=3.5) as plain:
        assert_type(plain, tether.Completions[int, bytes])
    async with tether.amap(
        fetch_bytes, [1], limit=2, return_exceptions=False
    ) as still_plain:
        assert_type(still_plain, tether.Completions[int, bytes])
    async with tether.amap(
        fetch_bytes, [1], limit=8, item_timeout=3.5, return_exceptions=True
    ) as settled:
        assert_type(settled, tether.Completions[int, bytes | Exception])
        async for size, outcome in settled:
            assert_type(size, int)
            assert_type(outcome, bytes | Exception)
    # A bool known only at run time gives the wider type.
    async with tether.amap(
        fetch_bytes, [1], limit=2, return_exceptions=settle
    ) as either:
        assert_type(either, tether.Completions[int, bytes | Exception])


async def bad_item_timeouts_are_type_errors() -> None:
    await tether.run_all(fetch_int(), item_timeout="3")  # type: ignore[call-overload]
    await tether.settle_all(fetch_int(), item_timeout="3")  # type: ignore[call-overload]
    tether.amap(fetch_bytes, [1], limit=2, item_timeout="3")  # type: ignore[call-overload]
    tether.amap(fetch_bytes, [1], limit=2, return_exceptions=1)  # type: ignore[call-overload]
