"""In-memory copy of one store table: a DataFrame indexed by id plus not-yet-merged edits.

Appends and deletes are kept aside and merged on the next read, so that one edit costs the
same on a million rows as on a thousand (no whole-frame copy per edit).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def _mutable(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as NumPy object arrays: pandas' Arrow-backed ``str`` columns rewrite the
    whole array on every cell assignment."""
    text = [
        c
        for c in frame.columns
        if pd.api.types.is_string_dtype(frame[c].dtype) and frame[c].dtype != object
    ]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


class TableRows:
    """Rows of one table keyed by an integer id column ``key``."""

    def __init__(self, frame: pd.DataFrame, key: str):
        self.key = key
        self.columns = list(frame.columns)
        self._frame = _mutable(frame).set_index(key, drop=False)
        self._frame.index.name = None
        self._pending: dict[int, dict] = {}
        self._deleted: set[int] = set()

    def __contains__(self, row_id: object) -> bool:
        if row_id in self._pending:
            return True
        return row_id in self._frame.index and row_id not in self._deleted

    def __len__(self) -> int:
        return len(self._frame) - len(self._deleted) + len(self._pending)

    def get(self, row_id: int) -> dict:
        """One row as a dict, missing values as ``None`` (the caller checked it exists)."""
        if row_id in self._pending:
            return dict(self._pending[row_id])
        return {
            k: None if pd.api.types.is_scalar(v) and pd.isna(v) else v
            for k, v in self._frame.loc[row_id].to_dict().items()
        }

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self._pending[int(row[self.key])] = {c: row.get(c) for c in self.columns}

    def add_frame(self, frame: pd.DataFrame) -> None:
        """Bulk append (one concat), for imports of many rows."""
        self.merged()
        frame = _mutable(frame.reindex(columns=self.columns)).set_index(self.key, drop=False)
        frame.index.name = None
        self._frame = frame if self._frame.empty else pd.concat([self._frame, frame])

    def update(self, row_id: int, fields: dict) -> None:
        if row_id in self._pending:
            self._pending[row_id].update(fields)
            return
        for col, value in fields.items():
            self._frame.at[row_id, col] = value

    def update_many(self, row_ids: list[int], fields: dict) -> None:
        pending = [i for i in row_ids if i in self._pending]
        for i in pending:
            self._pending[i].update(fields)
        stored = [i for i in row_ids if i not in self._pending]
        if stored:
            for col, value in fields.items():
                self._frame.loc[stored, col] = value

    def delete(self, row_ids: Iterable[int]) -> None:
        for row_id in row_ids:
            if self._pending.pop(row_id, None) is None:
                self._deleted.add(row_id)

    def merged(self) -> pd.DataFrame:
        """The current frame with every edit merged (internal: do not modify it)."""
        if self._pending:
            extra = _mutable(
                pd.DataFrame.from_records(list(self._pending.values()), columns=self.columns)
            )
            extra.index = extra[self.key].to_numpy()
            self._frame = extra if self._frame.empty else pd.concat([self._frame, extra])
            self._pending.clear()
        if self._deleted:
            self._frame = self._frame.drop(index=list(self._deleted), errors="ignore")
            self._deleted.clear()
        return self._frame
