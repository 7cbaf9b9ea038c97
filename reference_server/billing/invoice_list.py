"""``customer.invoices`` for ``expand: ["invoices"]``: the invoices billing made or imported."""

from __future__ import annotations

from sqlalchemy import Connection

from reference_server.store.invoice_pages import InvoiceRow, customer_invoice_rows
from reference_server.store.subjects import CustomerRow


def list_invoices(conn: Connection, customer: CustomerRow) -> list[InvoiceRow]:
    """``customer.invoices`` for ``expand: ["invoices"]``, newest first (the customer's answer shows
    each with ``service.invoices.customer_invoice_json``)."""
    return customer_invoice_rows(conn, customer.pk)
