"""A signal from a store client that a call's first request is on the wire.

A dual read runs DynamoDB on a pool thread and MySQL on the caller's. Both are mostly Python
work under one GIL: started together, building DynamoDB's request and running MySQL's query
take turns, and each socket wait of one ends behind the other's CPU burst (the GIL convoy).
Starting MySQL once DynamoDB's request has been sent lets MySQL's work fill DynamoDB's wait.
"""
from __future__ import annotations

import contextvars
import threading

REQUEST_SENT: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("request_sent", default=None)


def signal_sent(**kwargs) -> None:
    """A botocore `before-send` handler (returns None: the request goes out as usual)."""
    sent = REQUEST_SENT.get()
    if sent is not None:
        sent.set()
