"""Line-level readers that locate every problem by file and line."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embedtune.errors import DataError

UTF8_HINT = "re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) with strict UTF-8 decoding; bad bytes name their line."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below, after the check
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path=path) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"not valid UTF-8 (byte {exc.start + 1} of the line)",
                    path=path,
                    line=number,
                    hint=UTF8_HINT,
                ) from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text


class Skipper:
    """Raises on a bad record, or counts and skips it when the user asked for ``--skip-bad``."""

    def __init__(self, skip_bad: bool, counter: Counter[str]) -> None:
        self.skip_bad = skip_bad
        self.counter = counter

    def bad(self, reason: str, error: DataError) -> None:
        """Count the record under ``reason`` or raise ``error``."""
        if not self.skip_bad:
            raise error
        self.counter[reason] += 1


def iter_jsonl(path: Path, skipper: Skipper) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line, object) for each non-blank line of a JSONL file."""
    for number, text in _decoded_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            skipper.bad(
                "malformed_json",
                DataError(
                    f"malformed JSON: {exc.msg} at column {exc.colno}", path=path, line=number
                ),
            )
            continue
        if not isinstance(record, dict):
            skipper.bad(
                "malformed_json",
                DataError("expected a JSON object on each line", path=path, line=number),
            )
            continue
        yield number, record


def iter_csv(
    path: Path, delimiter: str = ",", skipper: Skipper | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, row) for a CSV/TSV file with a header row."""
    # A 10-K section easily exceeds the csv module's default 128 KiB field limit.
    csv.field_size_limit(sys.maxsize)
    lines = (text for _, text in _decoded_lines(path))
    reader = csv.reader(lines, delimiter=delimiter)
    skipper = skipper or Skipper(False, Counter())
    try:
        header = [name.strip() for name in next(reader)]
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                skipper.bad(
                    "wrong_column_count",
                    DataError(
                        f"expected {len(header)} columns ({', '.join(header)}), found {len(row)}",
                        path=path,
                        line=reader.line_num,
                    ),
                )
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"malformed CSV: {exc}", path=path, line=reader.line_num) from None


def get_str(record: dict[str, Any], key: str, *, path: Path, line: int, required: bool) -> str:
    """A field as a string; a missing required field or a non-string value is an error."""
    value = record.get(key)
    if value is None:
        if required:
            raise DataError("missing field", path=path, line=line, field=key)
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataError(
            f"expected a string, found {type(value).__name__}", path=path, line=line, field=key
        )
    return value
