"""OpenTelemetry: one span per task, in a trace of its own, linked to the span
that spawned it (the task may outlive it: a span of a request ends with the
response, its background work does not)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, StatusCode

import tether

if TYPE_CHECKING:
    from contextvars import Token


class TracingHooks(tether.Hooks):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._spawners: WeakKeyDictionary[tether.Handle[Any], trace.SpanContext] = (
            WeakKeyDictionary()
        )
        self._spans: WeakKeyDictionary[
            tether.Handle[Any], tuple[trace.Span, Token[otel_context.Context]]
        ] = WeakKeyDictionary()

    def spawned(self, handle: tether.Handle[Any], /) -> None:
        # In the spawner's context: remember its span, if it is in one.
        spawner = trace.get_current_span().get_span_context()
        if spawner.is_valid:
            self._spawners[handle] = spawner

    def started(self, handle: tether.Handle[Any], /) -> None:
        # In the task's own context: its span becomes the current one there.
        spawner = self._spawners.pop(handle, None)
        span = self._tracer.start_span(
            f"task {handle.name}",
            context=otel_context.Context(),  # a new trace, not a child
            links=[] if spawner is None else [Link(spawner)],
            attributes={"tether.task": handle.name},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self._spans[handle] = (span, token)

    def ended(self, handle: tether.Handle[Any], /) -> None:
        self._spawners.pop(handle, None)
        entry = self._spans.pop(handle, None)
        if entry is None:
            return  # cancelled before it started: no span
        span, token = entry
        if handle.status is tether.Status.FAILED:
            failure = handle.exception()  # does not count as receiving it
            assert failure is not None
            span.record_exception(failure)
            span.set_status(StatusCode.ERROR, str(failure))
        elif handle.status is tether.Status.CANCELLED:
            span.set_attribute("tether.cancelled", True)
        span.end()
        otel_context.detach(token)  # ended runs in the task's context too


# In the application:
#
#     tracer = trace.get_tracer("app")
#     async with tether.TaskRegistry(name="app", hooks=TracingHooks(tracer)):
#         ...
