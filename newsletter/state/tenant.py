"""What every state tenant shares: one connection of its own, closed by ``with`` or ``close``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self


class Tenant:
    """A store over one connection (``_conn``); a context manager that closes it."""

    _conn: Any

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
