"""Workflow as data: a literal transition table checked in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from medalliance.errors import Forbidden, InvalidTransition

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)
Side = TypeVar("Side", bound=StrEnum)


@dataclass(frozen=True)
class Transition(Generic[S, Side]):
    frm: frozenset[S]
    to: S
    by: frozenset[Side]


def next_state(table: Mapping[E, Transition[S, Side]], current: S, event: E, side: Side) -> S:
    """The state after ``event``; raises 409 for a wrong state and 403 for the wrong side."""
    transition = table.get(event)
    if transition is None or current not in transition.frm:
        raise InvalidTransition(f"cannot {event.value} when {current.value}")
    if side not in transition.by:
        raise Forbidden(f"{side.value} may not {event.value}")
    return transition.to


def mermaid(table: Mapping[E, Transition[S, Side]]) -> str:
    lines = ["stateDiagram-v2"]
    for event, t in table.items():
        for frm in sorted(t.frm):
            lines.append(f"    {frm.value} --> {t.to.value}: {event.value}")
    return "\n".join(lines)
