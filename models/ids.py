"""Sortable ids: a prefix, the creation time, then randomness.

Ordering by id is ordering by creation, which makes cursor pagination a plain
``WHERE id < :cursor ORDER BY id DESC``.
"""

import secrets
import time


def new_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns() // 1000:016x}{secrets.token_hex(4)}"
