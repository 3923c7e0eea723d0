"""Where a form may send the browser next: a path on this site, nothing else."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

# Browsers drop tabs and newlines from URLs and treat "\" like "/": "/\t/evil" and "/\evil"
# both become "//evil", another site. Any control character or backslash disqualifies.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def same_site_path(target: str | None) -> str | None:
    """`target` if it is a path on this site ("/cart?x=1"), else None."""
    if not target or _UNSAFE.search(target) or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def referrer_path(referrer: str | None, host: str) -> str | None:
    """The path of a referring page on this host (a form's "back"), else None."""
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != host:
        return None
    return same_site_path(parts.path + (f"?{parts.query}" if parts.query else ""))
