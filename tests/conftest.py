"""Every async test runs on asyncio, asyncio with uvloop, and trio."""

from __future__ import annotations

from typing import Any

import pytest

_NO_OPTIONS: dict[str, object] = {}

BACKENDS: list[Any] = [
    pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", _NO_OPTIONS), id="trio"),
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def backend_name(anyio_backend: tuple[str, dict[str, Any]]) -> str:
    """``"asyncio"``, ``"uvloop"`` or ``"trio"``: the backend this test runs on."""
    name, options = anyio_backend
    if name == "asyncio" and options.get("use_uvloop"):
        return "uvloop"
    return name
