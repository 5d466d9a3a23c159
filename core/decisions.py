"""A staff decision on a pending request (H4 applications, G3 authorizations): one UPDATE decides.

Two staff members pressing "Aprobar" at once, or one pressing it twice, both
run the same conditional UPDATE; the database lets exactly one of them change
the row from PENDIENTE, and the other learns it lost.
"""

from __future__ import annotations

from typing import Any

from core import clock


def claim_pending(model: Any, row_id: int, **changes) -> tuple[bool, Any]:
    """Move a PENDIENTE row of model to its decision; return (won, the row as it now is).

    model has ``estado``, ``decided_at`` and a ``PENDIENTE`` constant. A wrong id
    raises DoesNotExist (the views answer 404 before this).
    """
    won = (
        model.update(decided_at=clock.utcnow(), **changes)
        .where((model.id == row_id) & (model.estado == model.PENDIENTE))
        .execute()
    )
    return won == 1, model.get_by_id(row_id)
