"""Types of the web integrations: never executed, checked by mypy --strict and
pyright strict (negatives carry mypy's error code).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from typing_extensions import assert_type

import tether
import tether.aiohttp
from tether.asgi import TaskRegistryMiddleware

if TYPE_CHECKING:
    from aiohttp import web
    from fastapi import FastAPI
    from starlette.applications import Starlette


def asgi_setup(app: FastAPI, plain: Starlette) -> None:
    app.add_middleware(TaskRegistryMiddleware, shutdown_timeout=10)
    plain.add_middleware(TaskRegistryMiddleware, name="web", limit=100)
    wrapped = TaskRegistryMiddleware(plain, shutdown_timeout=5, signals=())
    assert_type(wrapped, TaskRegistryMiddleware)
    TaskRegistryMiddleware(plain, shutdown_timeout="5")  # type: ignore[arg-type]
    # Every option of the registry, and how a fatal task stops the server.
    app.add_middleware(
        TaskRegistryMiddleware,
        hooks=tether.Hooks(),
        context="registry",
        stop_server=signal.SIGINT,
    )
    TaskRegistryMiddleware(plain, stop_server=None)
    TaskRegistryMiddleware(plain, stop_server=lambda exc: None)
    TaskRegistryMiddleware(plain, stop_server=15)  # type: ignore[arg-type]
    TaskRegistryMiddleware(plain, context="request")  # type: ignore[arg-type]


def aiohttp_setup(app: web.Application) -> None:
    tether.aiohttp.setup(app, shutdown_timeout=10)
    assert_type(app[tether.aiohttp.REGISTRY], tether.TaskRegistry)
    tether.aiohttp.setup(app, limit="10")  # type: ignore[arg-type]
    tether.aiohttp.setup(
        app,
        hooks=tether.Hooks(),
        context="registry",
        ambient=False,
        drain="on-shutdown",
        stop_server=signal.SIGTERM,
    )
    tether.aiohttp.setup(app, stop_server=None, drain="on-cleanup")
    tether.aiohttp.setup(app, drain="later")  # type: ignore[arg-type]
    tether.aiohttp.setup(app, stop_server="SIGTERM")  # type: ignore[arg-type]
