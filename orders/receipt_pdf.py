"""A receipt as a PDF, drawn with ReportLab from the receipt's stored content.

ReportLab is a pure-Python wheel: no system libraries (WeasyPrint needs Pango and Cairo from the
operating system, which a fresh machine may lack). The standard Helvetica font covers Latin-1;
the words are ``orders.messages.receipt_text``'s, the same as the e-mail's.
"""

from io import BytesIO
from xml.sax.saxutils import escape

from django.http import HttpResponse
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import PropertySet, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from orders.messages import receipt_text
from orders.models import CreditNote, Receipt
from orders.receipts import ReceiptContent


def receipt_pdf(content: ReceiptContent) -> bytes:
    """The receipt as a one-page US Letter PDF (more pages for a very long one)."""
    text = receipt_text(content)
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], styles["Normal"]

    def para(value: str, style: PropertySet = body) -> Paragraph:
        return Paragraph(escape(value), style)  # product and merchant names are user input

    rows: list[list[object]] = [["Item", "Qty", "Unit price", "Amount"]]
    rows += [[para(desc, small), qty, unit, amount] for desc, qty, unit, amount in text.items]
    totals_from = len(rows)
    rows.append(["", "", "Subtotal", text.subtotal])
    rows += [["", "", para(label, small), amount] for label, amount in text.taxes]
    rows.append(["", "", "Total", text.total])
    table = Table(rows, colWidths=[3.6 * inch, 0.6 * inch, 1.3 * inch, 1.3 * inch], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.grey),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (2, totals_from), (-1, totals_from), 0.5, colors.grey),
                ("LINEABOVE", (2, -1), (-1, -1), 0.75, colors.black),
                ("FONTNAME", (2, -1), (-1, -1), "Helvetica-Bold"),
            ]
        )
    )
    story = [
        Paragraph(escape(text.title), styles["Title"]),
        para(f"Issued {text.issued}"),
        para(f"Order {text.order}, placed {text.ordered}"),
        Spacer(1, 0.2 * inch),
        Paragraph("<b>Sold by</b>", body),
        *(para(line) for line in text.merchant),
        Spacer(1, 0.25 * inch),
        table,
        Spacer(1, 0.25 * inch),
        para(text.payment),
        para(text.note),
    ]
    out = BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=LETTER,
        title=text.title,
        author=content.merchant_name,
        subject=f"Order #{content.order_code}",
        creator="Hashcart",
    )
    document.build(story)
    return out.getvalue()


def receipt_download(receipt: Receipt | CreditNote) -> HttpResponse:
    """A receipt's or credit note's PDF as a download (``<number>.pdf``), drawn from its
    content as issued; private to the browser, never kept by a shared cache. The caller has
    checked who asks."""
    response = HttpResponse(
        receipt_pdf(ReceiptContent.from_json(receipt.content)), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="{receipt.reference}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response
