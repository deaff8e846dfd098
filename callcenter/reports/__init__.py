"""Reports: the monthly KPIs, unit grades and rankings, breakdowns, call-center statistics
and the printed monthly report; closed months are frozen so corrections stay visible."""

from callcenter.feature import Feature

FEATURE = Feature(name="reports", http=True, workers=True)
