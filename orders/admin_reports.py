"""The sales report page of the back office (issue 14, item 7): ``admin:orders_sales_report``.

A thin entry point over ``orders.reports.sales_report``: it parses the filters (date range,
campaign, platform; operators also choose a merchant, or every merchant), scopes them to the
user's merchant (``core.scoping``), and shows the report as charts and a table, or as CSV with
the same columns and rows (``?format=csv``). Hooked onto the order admin's URLs by
``SalesReportAdminMixin``.
"""

import csv
from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from catalog.models import Campaign, Merchant
from core.exports import csv_safe
from core.scoping import merchant_id_of, scope_to_merchant
from orders.reports import COLUMNS, MAX_DAYS, report_time_zone, sales_report
from social.models import Platform

# The range shown when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30


class SalesReportForm(forms.Form):
    """The report's filters (GET). Campaigns offered are the user's merchant's; the merchant
    choice is the operators' only."""

    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput({"type": "date"})
    )
    date_until = forms.DateField(
        required=False, label="Until", widget=forms.DateInput({"type": "date"})
    )
    merchant = forms.ModelChoiceField(
        queryset=Merchant.objects.order_by("name"), required=False, empty_label="All merchants"
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(), required=False, empty_label="All campaigns"
    )
    platform = forms.ChoiceField(choices=[("", "All platforms"), *Platform.choices], required=False)

    def __init__(self, *args: Any, merchant_id: int | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["campaign"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101  (for mypy)
        field.queryset = scope_to_merchant(
            Campaign.objects.order_by("-starts_at"), "merchant", merchant_id
        )
        if merchant_id is not None:  # staff: their merchant only
            del self.fields["merchant"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        date_from, date_until = data.get("date_from"), data.get("date_until")
        if date_from and date_until:
            if date_until < date_from:
                raise forms.ValidationError("The first day comes after the last.")
            if (date_until - date_from).days + 1 > MAX_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        merchant, campaign = data.get("merchant"), data.get("campaign")
        if merchant is not None and campaign is not None and campaign.merchant_id != merchant.pk:
            raise forms.ValidationError("That campaign is another merchant's.")
        return data


class SalesReportAdminMixin(admin.ModelAdmin):
    """Adds the sales report to an admin's URLs (the order admin's): whoever may view orders
    sees their merchant's report; operators see any merchant's or all."""

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "sales-report/",
            self.admin_site.admin_view(self.sales_report_view),
            name="orders_sales_report",
        )
        return [report, *super().get_urls()]

    def sales_report_view(self, request: HttpRequest) -> HttpResponse:
        """The report page, or its CSV with ``format=csv``; invalid filters show the form's
        errors (400) and no report."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        scope = merchant_id_of(request)
        form = SalesReportForm(request.GET or None, merchant_id=scope)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Sales report",
            "form": form,
            "columns": COLUMNS,
        }
        if request.GET and not form.is_valid():
            return TemplateResponse(request, "admin/orders/sales_report.html", context, status=400)
        data = form.cleaned_data if request.GET else {}
        merchant_id = scope
        if merchant_id is None and data.get("merchant") is not None:
            merchant_id = data["merchant"].pk
        tz = report_time_zone(merchant_id=merchant_id)
        date_until = data.get("date_until") or datetime.now(tz).date()
        date_from = data.get("date_from") or date_until - timedelta(days=DEFAULT_DAYS - 1)
        if (date_until - date_from).days + 1 > MAX_DAYS or date_until < date_from:
            date_from = date_until - timedelta(days=DEFAULT_DAYS - 1)
        campaign = data.get("campaign")
        report = sales_report(
            merchant_id=merchant_id,
            date_from=date_from,
            date_until=date_until,
            tz=tz,
            campaign_id=campaign.pk if campaign is not None else None,
            platform=data.get("platform") or None,
        )
        if request.GET.get("format") == "csv":
            return _csv(report.table(), date_from=date_from, date_until=date_until)
        query = request.GET.copy()
        query["format"] = "csv"
        context.update(
            report=report, table_rows=_table_rows(report.table()), csv_query=query.urlencode()
        )
        return TemplateResponse(request, "admin/orders/sales_report.html", context)


def _table_rows(table: list[list[str]]) -> SafeString:
    """The table's body rows as HTML (the first cell of each a row header), built here rather
    than by template loops: a two-year report is some 20,000 cells."""
    return format_html_join(
        "\n",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (cells[0], format_html_join("", "<td>{}</td>", ((cell,) for cell in cells[1:])))
            for cells in table
        ),
    )


def _csv(table: list[list[str]], *, date_from: date, date_until: date) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="sales-{date_from.isoformat()}-{date_until.isoformat()}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow([heading for _, heading, _ in COLUMNS])
    for cells in table:
        writer.writerow([csv_safe(cell) for cell in cells])
    return response
