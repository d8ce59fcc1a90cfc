"""The observability recipes, run as the docs show them: OpenTelemetry spans
through hooks (with the SDK's in-memory exporter), structlog's JSON of tether's
records, and asyncio's own introspection."""

from __future__ import annotations

import io
import json
import logging
from typing import Any, NoReturn

import anyio
import anyio.lowlevel
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from helpers import tether_records
from recipes.introspection import stacks_by_name
from recipes.structured_logs import log_tether_as_json
from recipes.tracing import TracingHooks
from tether import Handle, TaskRegistry

pytestmark = pytest.mark.anyio


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_each_task_gets_a_span_linked_to_the_spawners(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")

    async def send_email(address: str) -> None:
        with tracer.start_as_current_span("smtp"):  # a child of the task's span
            await anyio.lowlevel.checkpoint()

    async with TaskRegistry(hooks=TracingHooks(tracer)) as tasks:
        with tracer.start_as_current_span("POST /signup"):
            handle = tasks.spawn(send_email, "a@example.org", name="send_email")
        await handle
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"POST /signup", "task send_email", "smtp"}
    request, task, smtp = spans["POST /signup"], spans["task send_email"], spans["smtp"]
    assert request.context is not None
    assert task.context is not None
    assert task.parent is None  # a trace of its own...
    assert task.context.trace_id != request.context.trace_id
    [link] = task.links  # ...linked to the request that spawned it
    assert link.context.span_id == request.context.span_id
    assert smtp.parent is not None
    assert smtp.parent.span_id == task.context.span_id
    assert task.attributes is not None
    assert task.attributes["tether.task"] == "send_email"


async def test_a_failed_task_span_records_the_failure_and_it_is_still_reported(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> NoReturn:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    async with TaskRegistry(hooks=TracingHooks(provider.get_tracer("test"))) as tasks:
        tasks.spawn(fail, name="fail")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    [record] = tether_records(caplog)
    assert record.getMessage() == "Task 'fail' of TaskRegistry 'registry' failed"


async def test_a_task_cancelled_before_it_starts_has_no_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    release = anyio.Event()
    hooks = TracingHooks(provider.get_tracer("test"))
    async with TaskRegistry(hooks=hooks, limit=1) as tasks:
        running = tasks.spawn(release.wait, name="running")
        tasks.spawn(release.wait, name="queued").cancel()
        await anyio.wait_all_tasks_blocked()
        running.cancel()
    [span] = exporter.get_finished_spans()
    assert span.name == "task running"
    assert span.attributes is not None
    assert span.attributes["tether.cancelled"] is True


async def test_tether_records_become_json_with_registry_and_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> NoReturn:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    stream = io.StringIO()
    handler = log_tether_as_json(stream)
    try:
        async with TaskRegistry(name="app") as tasks:
            tasks.spawn(fail, name="nightly-report")
    finally:
        logging.getLogger("tether").removeHandler(handler)
    records: list[dict[str, Any]] = [
        json.loads(line) for line in stream.getvalue().splitlines()
    ]
    [record] = [r for r in records if r["level"] == "error"]  # DEBUG is on in tests
    assert record["event"] == "Task 'nightly-report' of TaskRegistry 'app' failed"
    assert record["level"] == "error"
    assert record["tether_registry"] == "app"
    assert record["tether_task"] == "nightly-report"
    assert "ValueError: boom" in record["exception"]
    assert len(tether_records(caplog)) == 1  # the same record, as the suite saw it


@pytest.mark.parametrize("anyio_backend", ["asyncio", "uvloop"], indirect=True)
async def test_asyncio_sees_tether_tasks_by_their_names() -> None:
    release = anyio.Event()
    handles: list[Handle[Any]] = []
    stacks: dict[str, list[str]] = {}
    async with TaskRegistry() as tasks:
        handles.append(tasks.spawn(release.wait, name="waits-for-release"))
        await anyio.wait_all_tasks_blocked()
        stacks = stacks_by_name()
        release.set()
    assert "waits-for-release" in stacks
    assert stacks["waits-for-release"]  # where it is suspended
