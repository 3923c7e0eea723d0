"""One meaning for text in both stores: the folding behind case-insensitive search and names.

MySQL's LOWER() and its collations, and Python's str.lower(), disagree on hundreds of
characters (U+0130 'İ' lowers to 'i̇' in Python and to 'i' in MariaDB; U+0220 has a lower case in
one and not the other; utf8mb4_general_ci also equates 'ß' and 's'). A search or a name lookup
that let each store fold text its own way answered differently in each, so one seller's product
name could fail every shopper's dual read. Instead the application folds text itself, once, the
same way for both stores, and each store compares the folded text byte for byte:

    fold(s) = NFC(NFD(casefold(NFKC(s))) without U+0300..U+036F)

Compatibility forms fold together ('ﬁ' and 'fi', full-width 'Ａ' and 'A'), so do case ('ß' and
'ss') and the accents of Latin, Greek and Cyrillic letters ('Café' and 'cafe', 'İstanbul' and
'istanbul'), as MySQL 8's default collation (utf8mb4_0900_ai_ci, the reference backend's)
compares them; the marks of other scripts stay, where they change the word. MySQL keeps the
folded text in columns of its own (`products.name_fold`, `categories.name_key`), DynamoDB in
attributes of the items; the repositories write them, and every case-insensitive comparison
reads them (docs/data-model.md).
"""
from __future__ import annotations

import hashlib
import unicodedata

_ACCENTS = dict.fromkeys(range(0x0300, 0x0370))  # Combining Diacritical Marks


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    return unicodedata.normalize("NFC", decomposed.translate(_ACCENTS))


def fold_key(text: str) -> str:
    """A fixed-size key for uniqueness: folding can make a name many times longer ('ﷺ' is 18
    characters folded), longer than an index or a partition key may be."""
    return hashlib.sha256(fold(text).encode()).hexdigest()


def like_pattern(term: str) -> str:
    """A LIKE pattern matching the folded `term` literally anywhere in folded text."""
    escaped = fold(term).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
