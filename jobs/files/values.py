"""Column values to JSON and back, guided by each column's type."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.types import TypeDecorator

__all__ = ["RowDecoder", "encode_value"]


def encode_value(value: Any) -> Any:
    """JSON form of a column value that ``json`` cannot write by itself (``default=`` hook)."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot store a {type(value).__name__} value in a backup")


def _python_type(column: Column[Any]) -> type | None:
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        python_type: type = column_type.python_type
    except NotImplementedError:
        return None
    return python_type


def _decoder(column: Column[Any]) -> Callable[[Any], Any] | None:
    python_type = _python_type(column)
    if python_type is None:
        return None
    decoders: list[tuple[type, Callable[[Any], Any]]] = [
        (dt.datetime, dt.datetime.fromisoformat),
        (dt.date, dt.date.fromisoformat),
        (dt.time, dt.time.fromisoformat),
        (decimal.Decimal, decimal.Decimal),
        (uuid.UUID, uuid.UUID),
        (bytes, base64.b64decode),
        (enum.Enum, python_type),
    ]
    for kind, decode in decoders:
        if issubclass(python_type, kind):
            return decode
    return None


class RowDecoder:
    """Turns a row read from a backup back into the values ``table``'s columns take."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.columns = {column.name for column in table.columns}
        self.decoders = {
            column.name: decoder
            for column in table.columns
            if (decoder := _decoder(column)) is not None
        }

    def decode(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with typed values; ValueError if it names a column the table lacks."""
        unknown = row.keys() - self.columns
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(sorted(unknown))}")
        decoded = dict(row)
        for name, decode in self.decoders.items():
            value = decoded.get(name)
            if value is not None:
                decoded[name] = decode(value)
        return decoded
