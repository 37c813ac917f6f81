"""Torreya without what issue 30 added to every request (X-Request-ID, the request's metrics,
the check-in and ledger counters): the other half of bench/observe.py's comparison. The
same app otherwise, from the same checkout."""

from torreya.asgi import app
from torreya.ops import metrics
from torreya.ops.observe import ObserveMiddleware

# Starlette builds its middleware stack on the first request: drop the one layer first.
app.user_middleware = [m for m in app.user_middleware if m.cls is not ObserveMiddleware]
metrics.checkin = lambda result: None
metrics.entries = lambda kind, count=1: None
