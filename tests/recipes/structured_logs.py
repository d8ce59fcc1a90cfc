"""structlog: tether's log records as JSON, indexed by registry and task.

Every record tether logs carries the ``extra`` fields ``tether_registry`` and
``tether_task``; structlog's ``ExtraAdder`` lifts them into the event."""

from __future__ import annotations

import logging
from typing import TextIO

import structlog


def log_tether_as_json(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.ExtraAdder(),  # tether_registry, tether_task
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
        )
    )
    logging.getLogger("tether").addHandler(handler)
    return handler
