"""An invoice's lines (``invoice_lines``) and an invoice draft's lines as JSON (kept on checkout
sessions, so the hosted page charges exactly the lines it showed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from reference_server.engine.billing.invoice import InvoiceDraft, LineItem, LineKind
from reference_server.engine.billing.periods import Period
from reference_server.store.tables.billing import invoice_lines


def insert_lines(conn: Connection, invoice_pk: int, draft: InvoiceDraft) -> None:
    """The draft's lines as the invoice's, in order."""
    if draft.lines:
        conn.execute(
            insert(invoice_lines), [_line_row(invoice_pk, i, line) for i, line in enumerate(draft.lines)]
        )


def _line_row(invoice_pk: int, position: int, line: LineItem) -> dict[str, Any]:
    return {
        "invoice_pk": invoice_pk,
        "position": position,
        "kind": line.kind.value,
        "display_name": line.display_name,
        "description": line.description,
        "amount": line.amount,
        "plan_id": line.plan_id,
        "feature_id": line.feature_id,
        "quantity": str(line.quantity),
        "period_start": line.period.start if line.period else None,
        "period_end": line.period.end if line.period else None,
    }


def invoice_lines_of(conn: Connection, invoice_pk: int) -> list[Row[Any]]:
    """The invoice's ``invoice_lines`` rows, in order."""
    return list(
        conn.execute(
            select(invoice_lines)
            .where(invoice_lines.c.invoice_pk == invoice_pk)
            .order_by(invoice_lines.c.position)
        ).all()
    )


def line_items_of(conn: Connection, invoice_pk: int) -> tuple[LineItem, ...]:
    """The invoice's lines as the engine's line items, in order."""
    return tuple(
        LineItem(
            kind=LineKind(row.kind),
            display_name=row.display_name,
            description=row.description,
            amount=int(row.amount),
            plan_id=row.plan_id,
            feature_id=row.feature_id,
            quantity=Decimal(row.quantity),
            period=Period(row.period_start, row.period_end) if row.period_start is not None else None,
        )
        for row in invoice_lines_of(conn, invoice_pk)
    )


def draft_to_json(draft: InvoiceDraft) -> list[dict[str, Any]]:
    """Lines of a draft as JSON (stored on checkout sessions so the page charges exactly these)."""
    return [
        {
            "kind": line.kind.value,
            "display_name": line.display_name,
            "description": line.description,
            "amount": line.amount,
            "plan_id": line.plan_id,
            "feature_id": line.feature_id,
            "quantity": str(line.quantity),
            "period": [line.period.start, line.period.end] if line.period else None,
        }
        for line in draft.lines
    ]


def draft_from_json(lines: list[dict[str, Any]], currency: str) -> InvoiceDraft:
    return InvoiceDraft(
        tuple(
            LineItem(
                kind=LineKind(raw["kind"]),
                display_name=raw["display_name"],
                description=raw["description"],
                amount=int(raw["amount"]),
                plan_id=raw["plan_id"],
                feature_id=raw["feature_id"],
                quantity=Decimal(raw["quantity"]),
                period=Period(*raw["period"]) if raw.get("period") else None,
            )
            for raw in lines
        ),
        currency,
    )
