"""English date formats with the time zone shown (issue 14): "30 Nov 2026 14:05 EST". Times in
the back office are in the merchant's zone (``accounts.middleware.merchant_time_zone``) or in
UTC for operators, so a time without its zone would be ambiguous."""

DATETIME_FORMAT = "j M Y H:i T"
SHORT_DATETIME_FORMAT = "j M Y H:i T"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
