"""Wording shared by everything lars-search prints (tables, summaries, the export's header)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 arm``, ``2 arms``, ``1 study``, ``3 studies``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
