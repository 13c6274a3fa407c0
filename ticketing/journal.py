"""Recording every state change of an order: what happened, when, by whom and from which province."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from expo.access.rules import Principal
from ticketing.models import Order, OrderEvent


def record_event(
    session: AsyncSession,
    *,
    order: Order,
    event: str,
    status_to: str,
    by: Principal | None,
    now: datetime,
    detail: str | None = None,
) -> None:
    """Append one journal line and move the order to `status_to`; `by` is None for the system itself."""
    session.add(
        OrderEvent(
            order_id=order.id,
            at=now,
            event=event,
            status_from=None if event == "created" else order.status,
            status_to=status_to,
            credential_id=by.credential_id if by else None,
            staff_id=by.staff_id if by else None,
            province=by.province_code if by else None,
            detail=detail,
        )
    )
    order.status = status_to
