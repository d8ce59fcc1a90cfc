"""Never executed: mypy --strict and pyright strict check these types.

The spawn with no registry bound, the strict mode that refuses it, and the
adoption of raw tasks.
"""

from __future__ import annotations

from typing_extensions import assert_type

import tether
from tether import Adoption, Handle, RequireRegistry


async def fetch(url: str) -> bytes:
    return url.encode()


def from_a_callback() -> None:
    # A loop callback or a Protocol method is sync: tether.spawn is too.
    assert_type(tether.spawn(fetch, "u"), Handle[bytes])
    assert_type(tether.spawn(fetch("u")), Handle[bytes])


def strict_mode() -> None:
    setting = tether.require_registry()
    assert_type(setting, RequireRegistry)
    assert_type(setting.undo(), None)
    assert_type(tether.require_registry(False), RequireRegistry)
    with tether.require_registry() as entered:
        assert_type(entered, RequireRegistry)


def negatives() -> None:
    tether.require_registry("yes")  # type: ignore[arg-type]
    tether.require_registry(required=1.5)  # type: ignore[arg-type]


async def adoption() -> None:
    adopted = tether.adopt_tasks()
    assert_type(adopted, Adoption)
    assert_type(adopted.active, bool)
    assert_type(adopted.undo(), None)
    with tether.adopt_tasks() as entered:
        assert_type(entered, Adoption)


def adoption_negatives(adopted: Adoption) -> None:
    tether.adopt_tasks(True)  # type: ignore[call-arg]
    adopted.active = False  # type: ignore[misc]
