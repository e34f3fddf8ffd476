"""CSV, TSV and JSONL tables: decoding (UTF-8 checked, or a given encoding) and parsing.

pyarrow reads bytes that are not UTF-8 into a CSV column as ``binary`` without a word, and its
JSON reader puts them into ``string`` columns unchecked. Here every text table is checked: a
file that is not valid UTF-8 is refused with the line and byte of the first bad sequence, and
the caller names the real encoding (``LabelSpec(encoding=...)``, ``--encoding``).
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from mlbalance.errors import InputError, ParameterError
from mlbalance.io._parquet import check_unique_columns, missing_column
from mlbalance.io.spec import LabelSpec

__all__ = ["first_bad_utf8", "read_text_table"]


def first_bad_utf8(path: Path, chunk: int = 1 << 22) -> tuple[int, int, int] | None:
    """``(line, byte offset, byte value)`` of the first invalid UTF-8 sequence, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes read before this block
    lines = 1  # line number at the start of this block
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            pending = len(decoder.getstate()[0])  # an incomplete sequence carried over
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                data = exc.object
                return (
                    lines + data[: exc.start].count(b"\n"),
                    offset - pending + exc.start,
                    int(data[exc.start]),
                )
            if not block:
                return None
            lines += block.count(b"\n")
            offset += len(block)


def _not_utf8(path: Path) -> InputError | None:
    found = first_bad_utf8(path)
    if found is None:
        return None
    line, where, byte = found
    return InputError(
        f"{path}: line {line} (byte {where}, 0x{byte:02x}) is not UTF-8 text; "
        "give the file's encoding with --encoding (e.g. latin-1 or cp1252)"
    )


def _source(path: Path, fmt: str, encoding: str | None) -> Path | io.BytesIO:
    """What pyarrow reads: the file, or for JSONL in another encoding its UTF-8 transcoding."""
    if fmt != "jsonl" or _is_utf8(encoding):
        return path
    try:
        return io.BytesIO(path.read_text(encoding=encoding).encode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: byte {exc.start} is not valid {encoding}") from None


def _is_utf8(encoding: str | None) -> bool:
    _check_codec(encoding)
    return encoding is None or codecs.lookup(encoding).name == "utf-8"


def _check_codec(encoding: str | None) -> None:
    if encoding is None:
        return
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ParameterError(
            f"encoding {encoding!r} is not a codec Python knows (e.g. latin-1, cp1252)",
            param="encoding",
        ) from None


def read_text_table(
    path: Path, fmt: str, spec: LabelSpec, columns: Sequence[str] | None = None
) -> pa.Table:
    """A CSV, TSV or JSONL file as an Arrow table (every column, or *columns*).

    TSV is read without quote processing (GoEmotions' texts hold bare quotes); the label
    column of a CSV/TSV is read as text. Column names must be unique.
    """
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    _check_codec(spec.encoding)
    utf8 = _is_utf8(spec.encoding)
    try:
        if fmt in ("csv", "tsv"):
            read = pcsv.ReadOptions(
                column_names=list(spec.header_names) if spec.header_names else None,
                block_size=1 << 24,
                encoding="utf8" if utf8 else str(spec.encoding),
            )
            parse = pcsv.ParseOptions(
                delimiter="\t" if fmt == "tsv" else ",",
                quote_char=False if fmt == "tsv" else '"',
                newlines_in_values=fmt == "csv",
            )
            conv = pcsv.ConvertOptions(strings_can_be_null=False)
            if not spec.is_indicator:
                conv.column_types = {spec.column: pa.string()}
            table = pcsv.read_csv(
                path, read_options=read, parse_options=parse, convert_options=conv
            )
        else:
            table = pjson.read_json(
                _source(path, fmt, spec.encoding),
                read_options=pjson.ReadOptions(block_size=1 << 24),
            )
    except pa.ArrowInvalid as exc:
        msg = str(exc).strip().splitlines()[0]
        if utf8 and ("UTF8" in msg or "UTF-8" in msg or "utf8" in msg):
            bad = _not_utf8(path)
            if bad is not None:
                raise bad from None
        raise InputError(f"{path}: cannot parse {fmt.upper()}: {msg}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: byte {exc.start} is not valid {spec.encoding}") from None
    check_unique_columns(path, table.column_names)
    if utf8:
        _check_utf8(path, table, validate=fmt == "jsonl")
    if columns:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise missing_column(path, missing[0], table.column_names, "label_column")
        table = table.select(list(columns))
    return table


def _check_utf8(path: Path, table: pa.Table, *, validate: bool) -> None:
    """Refuse binary columns (pyarrow's CSV reader makes them of bytes that are not UTF-8) and,
    with *validate*, string columns holding invalid UTF-8 (its JSON reader does not check)."""
    for f in table.schema:
        typ = f.type
        bad = pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
        text = pa.types.is_string(typ) or pa.types.is_large_string(typ)
        if validate and not bad and (text or pa.types.is_nested(typ)):
            try:
                table.column(f.name).validate(full=True)
            except pa.ArrowInvalid:
                bad = True
        if bad:
            err = _not_utf8(path)
            if err is not None:
                raise err
