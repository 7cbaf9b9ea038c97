"""An invoice as a PDF (fpdf2): the same facts as the invoice page, for the customer's records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fpdf import FPDF
from fpdf.enums import XPos, YPos


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    status: str
    date: str
    paid_date: str | None
    seller: str
    seller_url: str | None
    customer_lines: Sequence[str]
    lines: Sequence[tuple[str, str]]
    credit: str | None
    total: str
    card: str | None
    due_date: str | None = None  # an invoice-mode invoice once finalized (its net terms)


def _latin1(text: str) -> str:
    """fpdf2's core fonts are Latin-1: other characters (e.g. the euro sign) become their closest form."""
    return text.replace("€", "EUR ").encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(doc: InvoiceDocument) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Invoice {doc.number}"))
    pdf.set_author(_latin1(doc.seller))
    pdf.set_creator("Autumn reference server")
    pdf.add_page()
    pdf.set_auto_page_break(True, margin=20)
    width = pdf.epw

    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(width, 12, _latin1(doc.seller), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    if doc.seller_url:
        pdf.cell(width, 6, _latin1(doc.seller_url), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(width, 8, "Invoice", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    facts = [("Invoice number", doc.number), ("Date", doc.date), ("Status", doc.status)]
    if doc.due_date:
        facts.append(("Due", doc.due_date))
    if doc.paid_date:
        facts.append(("Paid", doc.paid_date))
    if doc.card:
        facts.append(("Payment method", doc.card))
    for label, value in facts:
        pdf.cell(40, 6, label)
        pdf.cell(width - 40, 6, _latin1(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(width, 6, "Billed to", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    for part in doc.customer_lines:
        pdf.cell(width, 6, _latin1(part), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)

    pdf.set_font("Helvetica", "B", 10)
    pdf.set_fill_color(240, 242, 247)
    pdf.cell(width - 40, 8, "Item", border="B", fill=True)
    pdf.cell(40, 8, "Amount", border="B", fill=True, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    for description, amount in doc.lines:
        y = pdf.get_y()
        pdf.multi_cell(width - 40, 7, _latin1(description), border="B", new_x=XPos.RIGHT, new_y=YPos.TOP)
        height = pdf.get_y() - y if pdf.get_y() > y else 7
        pdf.set_xy(pdf.l_margin + width - 40, y)
        pdf.cell(
            40, max(height, 7), _latin1(amount), border="B", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    if doc.credit:
        pdf.cell(width - 40, 7, "Credit applied")
        pdf.cell(40, 7, _latin1(doc.credit), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(width - 40, 9, "Total")
    pdf.cell(40, 9, _latin1(doc.total), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
