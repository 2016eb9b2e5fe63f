"""Files that people open in a spreadsheet (CSV exports from the admin and from commands)."""

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"); tab and carriage return start one after the spreadsheet trims them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """``value`` as a CSV cell that a spreadsheet shows as text: a text starting like a formula
    gets a leading quote; numbers, dates and other texts are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
