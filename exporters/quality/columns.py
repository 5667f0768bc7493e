"""Turn what a model server passes to ``check_inputs`` into columns.

Accepted: a pandas DataFrame, a 2-D numpy array or list of lists (columns in
profile order), a list of dicts, one dict, or one row as a 1-D sequence. The
result is one ``RawBatch``: rows, a way to fetch each profile feature's
values, and the schema problems found on the way. Nothing here raises on bad
data; unreadable input becomes a schema violation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelmon.exporters.quality.values import TYPE_ERROR, numeric_value


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()  # a column the row does not have (a schema problem, not a missing value)
_FAST_NUMERIC_TYPES = frozenset({int, float, type(None)})


@dataclass
class RawBatch:
    """Rows of one ``check_inputs`` call, column-wise.

    ``numeric(name)`` gives (float64 values with NaN for missing, absent and
    wrongly typed values, the count of type errors, the count of absent values);
    ``objects(name)`` gives the raw values (ABSENT where the column is absent).
    """

    rows: int
    schema: dict[str, int] = field(default_factory=dict)
    _frame: Any = None
    _array: np.ndarray | None = None
    _positions: Mapping[str, int] | None = None
    _dicts: Sequence[Mapping[str, Any]] | None = None
    key_total: int | None = None  # keys over all rows, for dict rows only

    def numeric(self, name: str) -> tuple[np.ndarray, int, int]:
        if self._frame is not None:
            column = self._frame_column(name)
            if column is None:
                return np.full(self.rows, np.nan), 0, self.rows
            if column.dtype.kind in "iufb":
                return column.to_numpy(dtype=np.float64, na_value=np.nan), 0, 0
            return _numeric_from_objects(column.tolist())
        if self._array is not None:
            assert self._positions is not None
            column = self._array[:, self._positions[name]]
            if column.dtype.kind in "iufb":
                return column.astype(np.float64), 0, 0
            return _numeric_from_objects(column.tolist())
        values = self.objects(name)
        if set(map(type, values)) <= _FAST_NUMERIC_TYPES:
            return np.array(values, dtype=np.float64), 0, 0
        return _numeric_from_objects(values)

    def objects(self, name: str) -> list[Any]:
        if self._frame is not None:
            column = self._frame_column(name)
            return [ABSENT] * self.rows if column is None else column.tolist()
        if self._array is not None:
            assert self._positions is not None
            values: list[Any] = self._array[:, self._positions[name]].tolist()
            return values
        assert self._dicts is not None
        return [row.get(name, ABSENT) for row in self._dicts]

    def numeric_block(self, positions: np.ndarray) -> np.ndarray | None:
        """All numeric columns at once when the input is a numeric 2-D array."""
        if self._array is not None and self._array.dtype.kind in "iufb":
            return self._array[:, positions].astype(np.float64)
        return None

    def _frame_column(self, name: str) -> Any:
        columns = self._frame_columns
        key = columns.get(name)
        return None if key is None else self._frame[key]

    @property
    def _frame_columns(self) -> dict[str, Any]:
        cached = self.__dict__.get("_columns_cache")
        if cached is None:
            cached = {str(c): c for c in self._frame.columns}
            self.__dict__["_columns_cache"] = cached
        return cached


def _numeric_from_objects(values: list[Any]) -> tuple[np.ndarray, int, int]:
    out = []
    type_errors = absent = 0
    nan = np.nan
    for v in values:
        if v is ABSENT:
            absent += 1
            out.append(nan)
            continue
        f = numeric_value(v)
        if f is TYPE_ERROR:
            type_errors += 1
            out.append(nan)
        else:
            out.append(nan if f is None else f)
    return np.array(out, dtype=np.float64), type_errors, absent


def _add(schema: dict[str, int], kind: str, count: int) -> None:
    if count > 0:
        schema[kind] = schema.get(kind, 0) + count


def read_batch(X: Any, names: Sequence[str], index: Mapping[str, int]) -> RawBatch:
    """Columns of ``X`` for the profile features ``names`` (``index``: name -> position)."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # pandas DataFrame
        rows = len(X)
        batch = RawBatch(rows, _frame=X)
        present = batch._frame_columns
        _add(batch.schema, "unexpected_column", rows * sum(1 for n in present if n not in index))
        return batch
    if isinstance(X, Mapping):
        return _from_dicts([X], names, index)
    if isinstance(X, np.ndarray):
        return _from_array(X, names)
    if isinstance(X, list | tuple):
        if not X:
            return RawBatch(0)
        first = X[0]
        if isinstance(first, Mapping):
            return _from_dicts(X, names, index)
        if isinstance(first, list | tuple | np.ndarray):
            return _from_array(_array_of_rows(X), names)
        return _from_array(_array_of_rows([X]), names)  # one row, positional
    return RawBatch(1, {"unreadable_input": 1})


def _array_of_rows(rows: Sequence[Any]) -> np.ndarray:
    try:
        array = np.asarray(rows)
        if array.dtype.kind in "iufb" and array.ndim == 2:
            return array
    except (ValueError, TypeError):
        pass
    # Ragged or mixed rows: keep the Python objects so each value is judged alone.
    out = np.empty((len(rows), max((len(r) if isinstance(r, Sequence | np.ndarray) else 0)
                                   for r in rows)), dtype=object)
    out[:] = None
    for i, row in enumerate(rows):
        if isinstance(row, Sequence | np.ndarray) and not isinstance(row, str):
            out[i, : len(row)] = list(row)
    return out


def _from_array(X: np.ndarray, names: Sequence[str]) -> RawBatch:
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        return RawBatch(1, {"unreadable_input": 1})
    rows = int(X.shape[0])
    if X.shape[1] != len(names):
        return RawBatch(rows, {"column_count": rows})
    return RawBatch(rows, _array=X, _positions={n: i for i, n in enumerate(names)})


def _from_dicts(
    rows: Sequence[Any], names: Sequence[str], index: Mapping[str, int]
) -> RawBatch:
    dicts = [r for r in rows if isinstance(r, Mapping)]
    schema: dict[str, int] = {}
    _add(schema, "unreadable_input", len(rows) - len(dicts))
    batch = RawBatch(len(dicts), schema, _dicts=dicts)
    # The checker counts absent profile columns per feature and derives the
    # unexpected keys from this total: unexpected = keys - (known keys present).
    batch.key_total = sum(map(len, dicts))
    return batch
