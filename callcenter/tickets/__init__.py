"""Work orders (工单): intake, dispatch, the unit's handling, revisit and archive.

The state machine is ``lifecycle.py``, deadlines in working days ``calendar.py``, the
domain logic ``service.py``, the routes ``http.py``.
"""

from callcenter.feature import Feature

FEATURE = Feature(name="tickets", http=True, workers=True)
