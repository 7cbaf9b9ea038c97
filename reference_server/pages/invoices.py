"""The invoice page and its PDF download."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from reference_server.store.invoice_lines import invoice_lines_of
from reference_server.store.invoices import InvoiceRecord, invoice_by_id, paying_payment_method_pk
from reference_server.store.payment_methods import payment_method_by_pk
from reference_server.store.tables.dashboard import Branding

from .base import DRAFT_NOTICE, PageBase, customer_ref
from .formatting import format_date, format_money
from .invoice_pdf import InvoiceDocument, invoice_pdf


class InvoicePages(PageBase):
    """The invoice page's and the PDF's handlers."""

    def _invoice_document(
        self, request: Request, conn: Connection, invoice_id: str
    ) -> tuple[InvoiceRecord, InvoiceDocument, dict[str, Any]] | None:
        """The invoice's facts (for the page and the PDF) and the page's frame; None when unknown."""
        row = invoice_by_id(conn, invoice_id)
        if row is None:
            return None
        chrome = self._chrome(conn, row.customer_pk)
        brand: Branding = chrome["brand"]
        customer = customer_ref(conn, row.customer_pk)
        paid_with = paying_payment_method_pk(conn, row.pk)
        card = payment_method_by_pk(conn, paid_with) if paid_with is not None else None
        credit = row.credit_applied
        doc = InvoiceDocument(
            number=row.id,
            status=row.status,
            date=format_date(row.created_at) or "",
            paid_date=format_date(row.paid_at),
            seller=brand.name,
            seller_url=brand.website_url,
            customer_lines=[
                part for part in (customer.name, customer.email, f"Customer {customer.id}") if part
            ],
            lines=[
                (line.description, format_money(line.amount, row.currency))
                for line in invoice_lines_of(conn, row.pk)
            ],
            credit=format_money(-credit, row.currency) if credit else None,
            total=format_money(row.total, row.currency),
            card=f"{card.brand.capitalize()} ending in {card.last4}" if card else None,
            due_date=format_date(row.due_at),
        )
        return row, doc, chrome

    def invoice_page(self, request: Request, invoice_id: str) -> Response:
        with self.ctx.db.read() as conn:
            found = self._invoice_document(request, conn, invoice_id)
            if found is None:
                return self._not_found(request)
            row, doc, chrome = found
            return self._render(
                request,
                "invoice.html",
                **chrome,
                number=doc.number,
                invoice_id=row.id,
                invoice_status=row.status,
                date=doc.date,
                paid_date=doc.paid_date,
                due_date=doc.due_date,
                seller=doc.seller,
                seller_url=doc.seller_url,
                customer_lines=doc.customer_lines,
                card=doc.card,
                lines=[{"description": d, "amount": a} for d, a in doc.lines],
                credit=doc.credit,
                total=doc.total,
                notice=DRAFT_NOTICE if row.status == "draft" else None,
                pay_url=row.hosted_url if row.status == "open" and row.reason == "invoice" else None,
                pdf_url=request.url_for("invoice_pdf", invoice_id=row.id).path,
            )

    def invoice_pdf(self, request: Request, invoice_id: str) -> Response:
        with self.ctx.db.read() as conn:
            found = self._invoice_document(request, conn, invoice_id)
        if found is None:
            return self._not_found(request)
        _, doc, _ = found
        return Response(
            invoice_pdf(doc),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="invoice-{doc.number}.pdf"'},
        )
