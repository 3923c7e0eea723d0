"""/metrics: the whole server's migration health in Prometheus's text format, operator-only."""
from __future__ import annotations

import os
import time

from flask import Blueprint, Response, current_app, request
from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from .views import check_operator

bp = Blueprint("metrics", __name__)
bp.before_request(check_operator)


class _Families:
    """What generate_latest needs from a registry: collect()."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def _phase_age(families) -> GaugeMetricFamily:
    """Seconds since each worker last read the phase document, from its read timestamp. An idle
    worker re-reads before it serves; a large age on a busy one means the stores holding the
    phase could not be read, and it routes by the last phase it knew."""
    now = time.time()
    age = GaugeMetricFamily("shop_phase_age_seconds", "Seconds since each worker last read the phase document",
                            labels=["pid"])
    for family in families:
        for sample in family.samples:
            if sample.name == "shop_phase_read_timestamp_seconds" and sample.value:
                age.add_metric([sample.labels.get("pid", str(os.getpid()))], round(now - sample.value, 3))
    return age


@bp.get("/metrics")
def metrics():
    runtime = current_app.extensions["shop"].runtime
    families = runtime.stats.families()
    pending = GaugeMetricFamily("shop_repairs_pending", "Repair entries not yet replayed into DynamoDB"
                                " (absent while MySQL cannot be read)")
    try:
        with suppress_instrumentation():  # a scrape every 15 s is not worth a trace of its query
            pending.add_metric([], runtime.repair_log.pending_count())
    except Exception:  # a gap in the series, not a failed scrape
        pass
    runtime.phase.current()  # this worker's own view, re-read if due
    families.append(_phase_age(families))
    # The classic text format, or OpenMetrics when the scraper asks for it.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(_Families([*families, pending])), content_type=content_type)
