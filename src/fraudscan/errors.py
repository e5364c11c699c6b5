"""Exceptions fraudscan raises for problems a user can fix (bad input, missing workspace)."""

from __future__ import annotations


class FraudscanError(Exception):
    """Base class: the CLI prints these as one line and exits with status 2."""


class DataError(FraudscanError):
    """Input data that fail validation; carries the file, row and field when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ):
        self.file, self.row, self.field, self.reason = file, row, field, message
        where = ", ".join(
            p for p in (file, f"row {row}" if row is not None else None,
                        f"field {field}" if field else None) if p
        )
        super().__init__(f"{where}: {message}" if where else message)
