"""What other domains do when two persons are merged or unmerged.

Data keyed by the MPI person (stored resources, care relationships, consent) must follow
a merge, or a search for the survivor would miss what was written under the merged id.
Those domains depend on the MPI, not the other way round, so they register a step here;
a step moves its rows to the survivor and records each moved row (``claim``) so that
unmerge moves back exactly those rows (``claimed``) and nothing written since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select, delete, insert, literal, select
from sqlalchemy.orm import Session

from medalliance.patients.models import PersonMerge, PersonMergeMove

Action = Callable[[Session, PersonMerge], None]


@dataclass(frozen=True)
class MergeStep:
    name: str
    move: Action  # to the survivor, claiming what it moves
    restore: Action  # the claimed rows back to the merged person


STEPS: dict[str, MergeStep] = {}


def register(step: MergeStep) -> None:
    STEPS[step.name] = step


def claim(db: Session, merge: PersonMerge, target: str, row_ids: Select[int]) -> None:
    """Records the rows ``row_ids`` selects (ids in table ``target``) as moved by ``merge``."""
    ids = row_ids.subquery()
    rows = select(literal(merge.id), literal(target), ids.c[0])
    db.execute(
        insert(PersonMergeMove).from_select(["merge_id", "target", "row_id"], rows),
        execution_options={"synchronize_session": False},
    )


def claimed(merge_id: int, target: str) -> Select[int]:
    """The ids of ``target`` rows that merge ``merge_id`` moved (a subquery for IN)."""
    return select(PersonMergeMove.row_id).where(
        PersonMergeMove.merge_id == merge_id, PersonMergeMove.target == target
    )


def release(db: Session, merge: PersonMerge) -> None:
    """After an unmerge: rows it gives back are no longer the survivor's, so a later merge of
    the survivor into a third person (which carried them along) must not take them back.
    Earlier merges keep their claims: their rows only came along into this one."""
    later = select(PersonMerge.id).where(
        PersonMerge.id > merge.id, PersonMerge.unmerged_at.is_(None)
    )
    for target in _targets(db, merge.id):
        db.execute(
            delete(PersonMergeMove).where(
                PersonMergeMove.merge_id.in_(later),
                PersonMergeMove.target == target,
                PersonMergeMove.row_id.in_(claimed(merge.id, target)),
            )
        )


def _targets(db: Session, merge_id: int) -> list[str]:
    stmt = select(PersonMergeMove.target).where(PersonMergeMove.merge_id == merge_id).distinct()
    return list(db.scalars(stmt))
