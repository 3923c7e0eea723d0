"""Operators: the named accounts of the flag page and /metrics (`accounts`), the lockout after
failed attempts (`lockout`) and the `flask operator` commands that manage them (`cli`)."""
