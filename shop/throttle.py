"""How long a throttled client should wait: the `Retry-After` of every 429 the limiter causes."""
from __future__ import annotations

import math
import time

from flask import current_app


def retry_after(exc) -> str:
    """Whole seconds until the limit that refused this request lets one through again (the
    limiter knows when its window ends); the limit's whole window when it cannot say."""
    limiter = current_app.extensions.get("rate_limiter")
    try:
        breached = limiter.current_limit if limiter is not None else None
        if breached is not None and breached.breached:
            return str(max(1, math.ceil(breached.window.reset_time - time.time())))
    except Exception:  # noqa: BLE001 - the storage went away meanwhile: fall back to the window
        pass
    limit = getattr(getattr(exc, "limit", None), "limit", None)
    return str(limit.get_expiry() if limit is not None else 60)
