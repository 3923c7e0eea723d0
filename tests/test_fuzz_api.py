"""Generated requests over the whole JSON API never get a 500 (reliability/fuzz.py runs 10,000)."""
from __future__ import annotations

from reliability.fuzz import run, world


def test_generated_requests_get_no_5xx_and_always_the_envelope(client):
    failures = []
    seen = run(client, world(client), 150,
               on_response=lambda req, r: failures.append((req[0], req[1], r.status_code, r.get_data()[:200]))
               if r.status_code >= 500 else None)
    assert seen["total"] == 150 and seen["4xx"] > 0
    assert seen["5xx"] == 0 and seen["no envelope"] == 0, failures[:5]
