"""MULAN ARFF with its XML label file: dense and sparse ARFF, labels matched by name.

A MULAN dataset is a Weka ARFF file (``@relation``, ``@attribute`` lines, ``@data``) whose
label attributes are ``{0,1}`` nominal attributes, plus an XML file that names the labels
(``<labels xmlns="http://mulan.sourceforge.net/labels"><label name="..."/>...``; labels may
nest, for hierarchies). Label attributes are found by **name**: the XML order can differ from
the ARFF's, and mlbalance keeps the ARFF attribute order (as mldr does). Without an XML file, a
MEKA header (``@relation 'name: -C 6'``: the first 6 attributes are labels, ``-C -6`` the last
6) is used.

Data rows are dense (``v1,v2,...``, ``?`` = missing, values may be quoted) or sparse
(``{index value, ...}``; an index left out holds 0 for a numeric attribute and the first
declared value for a nominal one, as in Weka).

Some MULAN sets come only as ``NAME-train.arff`` + ``NAME-test.arff``; when ``NAME.arff``
does not exist but both halves do, :func:`read_arff` reads their concatenation (train first).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mlbalance.errors import InputError
from mlbalance.labels import LabelMatrix

__all__ = ["ArffHeader", "find_xml", "read_arff", "read_arff_header", "read_mulan_xml"]

PathLike = str | os.PathLike[str]
_NUMERIC = ("numeric", "real", "integer")


@dataclass(frozen=True)
class _Attribute:
    name: str
    kind: str  # "numeric", "nominal", "string", "date"
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArffHeader:
    """The header of an ARFF file: relation name, attributes, and where ``@data`` starts."""

    relation: str
    attributes: tuple[_Attribute, ...]
    data_line: int  # 1-based line number of the @data line


# --------------------------------------------------------------------------------------------
# header and XML
# --------------------------------------------------------------------------------------------
def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        inner = token[1:-1]
        return inner.replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")
    return token


def _split_name(rest: str, path: Path, lineno: int) -> tuple[str, str]:
    """Split ``name type`` where the name may be quoted."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        q = rest[0]
        i = 1
        while i < len(rest):
            if rest[i] == "\\":
                i += 2
                continue
            if rest[i] == q:
                break
            i += 1
        if i >= len(rest):
            raise InputError(f"{path}: line {lineno}: unterminated quoted attribute name")
        return _unquote(rest[: i + 1]), rest[i + 1 :].strip()
    parts = rest.split(None, 1)
    if len(parts) != 2:
        raise InputError(f"{path}: line {lineno}: @attribute needs a name and a type")
    return parts[0], parts[1].strip()


def _split_commas(text: str) -> list[str]:
    """Split on commas outside single or double quotes (backslash escapes inside quotes)."""
    if "'" not in text and '"' not in text:
        return text.split(",")
    parts: list[str] = []
    buf: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == ",":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _parse_nominal(spec: str) -> tuple[str, ...]:
    inner = spec.strip()[1:-1]
    return tuple(_unquote(v) for v in _split_commas(inner)) if inner.strip() else ()


def read_arff_header(path: PathLike) -> ArffHeader:
    """Parse the header of an ARFF file (everything before ``@data``)."""
    p = Path(path)
    relation = ""
    attrs: list[_Attribute] = []
    try:
        fh = p.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{p}: cannot open ({exc.strerror})") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("%"):
                continue
            low = line.lower()
            if low.startswith("@relation"):
                relation = _unquote(line[len("@relation") :])
            elif low.startswith("@attribute"):
                name, typ = _split_name(line[len("@attribute") :], p, lineno)
                tlow = typ.lower()
                if typ.startswith("{"):
                    if not typ.rstrip().endswith("}"):
                        raise InputError(f"{p}: line {lineno}: unterminated nominal value list")
                    attrs.append(_Attribute(name, "nominal", _parse_nominal(typ)))
                elif tlow.split()[0] in _NUMERIC:
                    attrs.append(_Attribute(name, "numeric"))
                elif tlow.startswith("string"):
                    attrs.append(_Attribute(name, "string"))
                elif tlow.startswith("date"):
                    attrs.append(_Attribute(name, "date"))
                else:
                    raise InputError(
                        f"{p}: line {lineno}: unsupported type {typ!r} of attribute {name!r}"
                    )
            elif low.startswith("@data"):
                if not attrs:
                    raise InputError(f"{p}: no @attribute lines before @data")
                return ArffHeader(relation, tuple(attrs), lineno)
            else:
                raise InputError(f"{p}: line {lineno}: expected @relation, @attribute or @data")
    raise InputError(f"{p}: not an ARFF file (no @data line)")


def read_mulan_xml(path: PathLike) -> list[str]:
    """Label names from a MULAN XML label file, in document order (nested labels included)."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except OSError as exc:
        raise InputError(f"{p}: cannot open ({exc.strerror})") from None
    except ET.ParseError as exc:
        raise InputError(f"{p}: not valid XML ({exc})") from None
    names = [el.get("name") for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "label"]
    if not names or any(n is None for n in names):
        raise InputError(f"{p}: no <label name=...> elements")
    return [str(n) for n in names]


def find_xml(arff_path: PathLike) -> Path | None:
    """The XML label file beside an ARFF: ``NAME.xml``, or for ``NAME-train.arff`` ``NAME.xml``."""
    p = Path(arff_path)
    candidates = [p.with_suffix(".xml")]
    stem = re.sub(r"-(train|test)$", "", p.stem)
    candidates.append(p.with_name(stem + ".xml"))
    return next((c for c in candidates if c.is_file()), None)


def _meka_labels(header: ArffHeader) -> list[int] | None:
    m = re.search(r"-C\s+(-?\d+)", header.relation)
    if not m:
        return None
    c = int(m.group(1))
    n = len(header.attributes)
    if c == 0 or abs(c) > n:
        return None
    return list(range(c)) if c > 0 else list(range(n + c, n))


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def _split_dense(line: str) -> list[str]:
    if "'" in line or '"' in line:
        return [_unquote(v) for v in _split_commas(line)]
    return [v.strip() for v in line.split(",")]


def _read_rows(path: Path, header: ArffHeader) -> tuple[int, list[_Cells], list[int]]:
    """Read the data section column-wise.

    Returns the row count, one :class:`_Cells` per attribute (the rows that hold an explicit
    value, and those values as strings) and the file line number of every row.
    """
    n = len(header.attributes)
    dense_rows: list[int] = []
    dense_vals: list[list[str]] = []
    sp_rows: list[list[int]] = [[] for _ in range(n)]
    sp_vals: list[list[str]] = [[] for _ in range(n)]
    fast_bodies: list[str] = []
    fast_rows: list[int] = []
    lines: list[int] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno <= header.data_line:
                continue
            line = raw.strip()
            if not line or line.startswith("%"):
                continue
            r = len(lines)
            lines.append(lineno)
            if line.startswith("{"):
                if not line.endswith("}"):
                    raise InputError(f"{path}: line {lineno}: sparse row without closing '}}'")
                body = line[1:-1].strip()
                if not body:
                    continue
                if "'" in body or '"' in body:  # quoted values: the careful path
                    _sparse_items(body, path, lineno, n, r, sp_rows, sp_vals)
                else:  # parsed in bulk below
                    fast_bodies.append(body)
                    fast_rows.append(r)
            else:
                values = _split_dense(line)
                if len(values) != n:
                    raise InputError(f"{path}: line {lineno}: {len(values)} values, expected {n}")
                dense_rows.append(r)
                dense_vals.append(values)
    if not lines:
        raise InputError(f"{path}: the dataset has no rows")
    if fast_bodies:
        _bulk_sparse(fast_bodies, fast_rows, lines, path, n, sp_rows, sp_vals)
    cells: list[_Cells] = []
    dense_cols = list(zip(*dense_vals, strict=True)) if dense_vals else [()] * n
    dr = np.asarray(dense_rows, dtype=np.int64)
    for j in range(n):
        if not sp_rows[j]:
            cells.append(_Cells(dr, list(dense_cols[j])))
        elif not dense_rows:
            cells.append(_Cells(np.asarray(sp_rows[j], dtype=np.int64), sp_vals[j]))
        else:
            cells.append(
                _Cells(
                    np.concatenate([dr, np.asarray(sp_rows[j], dtype=np.int64)]),
                    list(dense_cols[j]) + sp_vals[j],
                )
            )
    return len(lines), cells, lines


def _sparse_items(
    body: str,
    path: Path,
    lineno: int,
    n: int,
    r: int,
    sp_rows: list[list[int]],
    sp_vals: list[list[str]],
) -> None:
    """Parse one sparse row ``idx value, ...`` item by item (exact error messages)."""
    for item in _split_commas(body):
        parts = item.strip().split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise InputError(f"{path}: line {lineno}: malformed sparse entry {item.strip()!r}")
        idx = int(parts[0])
        if idx >= n:
            raise InputError(
                f"{path}: line {lineno}: attribute index {idx} out of range "
                f"(the file has {n} attributes)"
            )
        sp_rows[idx].append(r)
        sp_vals[idx].append(_unquote(parts[1]))


def _bulk_sparse(
    bodies: list[str],
    rows: list[int],
    lines: list[int],
    path: Path,
    n: int,
    sp_rows: list[list[int]],
    sp_vals: list[list[str]],
) -> None:
    """Parse unquoted sparse rows with a few big string splits instead of a loop per item."""
    counts = np.fromiter((b.count(",") + 1 for b in bodies), dtype=np.int64, count=len(bodies))
    items = ",".join(bodies).split(",")
    tokens = " ".join(items).split()
    ok = len(tokens) == 2 * len(items)
    if ok:
        try:
            idx = np.asarray(tokens[0::2], dtype=np.int64)
        except ValueError:
            ok = False
    if not ok or (idx.size and (idx.min() < 0 or idx.max() >= n)):
        for body, r in zip(bodies, rows, strict=True):  # find the culprit, with its line
            _sparse_items(
                body, path, lines[r], n, r, [[] for _ in range(n)], [[] for _ in range(n)]
            )
        raise AssertionError(
            "unreachable: a malformed sparse row was not found"
        )  # pragma: no cover
    row_of = np.repeat(np.asarray(rows, dtype=np.int64), counts)
    values = np.asarray(tokens[1::2], dtype=object)
    order = np.argsort(idx, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=n))])
    for j in np.flatnonzero(np.diff(bounds)):
        sel = order[bounds[j] : bounds[j + 1]]
        sp_rows[j].extend(row_of[sel].tolist())
        sp_vals[j].extend(values[sel].tolist())


@dataclass
class _Cells:
    rows: np.ndarray  # rows with an explicit value
    values: list[str]


def _column(
    cells: _Cells, n_rows: int, attr: _Attribute, path: Path, lines: list[int]
) -> np.ndarray | pd.Categorical | list[str | None]:
    """One feature column; rows without an explicit (sparse) value hold 0 / the first value."""
    vals = cells.values
    if attr.kind == "numeric":
        out = np.zeros(n_rows, dtype=np.float64)
        try:
            out[cells.rows] = [math.nan if v == "?" else float(v) for v in vals]
        except ValueError:
            i = next(i for i, v in enumerate(vals) if v != "?" and not _is_float(v))
            raise InputError(
                f"{path}: line {lines[cells.rows[i]]}: attribute {attr.name!r}: "
                f"{vals[i]!r} is not a number"
            ) from None
        return out
    if attr.kind == "nominal":
        index = {v: k for k, v in enumerate(attr.values)}
        index["?"] = -1
        codes = np.zeros(n_rows, dtype=np.int64)
        try:
            codes[cells.rows] = [index[v] for v in vals]
        except KeyError:
            i = next(i for i, v in enumerate(vals) if v not in index)
            raise InputError(
                f"{path}: line {lines[cells.rows[i]]}: attribute {attr.name!r}: {vals[i]!r} "
                f"is not one of its declared values"
            ) from None
        return pd.Categorical.from_codes(codes, categories=list(attr.values))
    out_s: list[str | None] = [""] * n_rows
    for r, v in zip(cells.rows.tolist(), vals, strict=True):
        out_s[r] = None if v == "?" else v
    return out_s


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _read_one(
    path: Path, label_names: list[str] | None, xml_path: Path | None
) -> tuple[pd.DataFrame, LabelMatrix]:
    header = read_arff_header(path)
    names = [a.name for a in header.attributes]
    if label_names is not None:
        present = set(names)
        missing = [n for n in label_names if n not in present]
        if missing:
            raise InputError(
                f"{xml_path}: names {len(missing)} label(s) that {path.name} lacks, e.g. "
                f"{missing[0]!r}"
            )
        wanted = set(label_names)
        label_idx = [i for i, n in enumerate(names) if n in wanted]
    else:
        meka = _meka_labels(header)
        if meka is None:
            raise InputError(
                f"{path}: no label attributes: give the MULAN XML label file (none found "
                f"beside it) or a MEKA header ('-C N' in @relation)"
            )
        label_idx = meka
    if not label_idx:
        raise InputError(f"{path}: no label attributes")
    for i in label_idx:
        a = header.attributes[i]
        if a.kind != "nominal" and a.kind != "numeric":
            raise InputError(f"{path}: label attribute {a.name!r} is {a.kind}, expected {{0,1}}")
    n_rows, cells, lines = _read_rows(path, header)
    lab = np.zeros((n_rows, len(label_idx)), dtype=np.uint8)
    for j, i in enumerate(label_idx):
        a = header.attributes[i]
        c = cells[i]
        one = "1"
        zero = "0" if a.kind == "numeric" else (a.values[0] if a.values else "0")
        if a.kind == "nominal" and set(a.values) - {"0", "1"}:
            raise InputError(
                f"{path}: label attribute {a.name!r} has values {{{','.join(a.values)}}}, "
                f"expected {{0,1}}"
            )
        vals = np.asarray(c.values, dtype=object)
        ones = vals == one
        bad = ~(ones | (vals == "0"))
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(
                f"{path}: line {lines[c.rows[r]]}: label {a.name!r} has value "
                f"{c.values[r]!r}, expected 0 or 1"
            )
        col = np.full(n_rows, 1 if zero == "1" else 0, dtype=np.uint8)
        col[c.rows] = ones
        lab[:, j] = col
    labels = LabelMatrix.from_sparse(sp.csr_matrix(lab), names=[names[i] for i in label_idx])
    is_label = set(label_idx)
    feats = {}
    for i, a in enumerate(header.attributes):
        if i not in is_label:
            feats[a.name] = _column(cells[i], n_rows, a, path, lines)
    return pd.DataFrame(feats), labels


def read_arff(
    arff_path: PathLike | Sequence[PathLike], xml_path: PathLike | None = None
) -> tuple[pd.DataFrame, LabelMatrix]:
    """Read a MULAN dataset: features and labels.

    Parameters
    ----------
    arff_path : path-like or sequence of path-likes
        The ARFF file; several files (e.g. ``train`` and ``test``) are concatenated in order
        and must share their attributes. ``NAME.arff`` that does not exist but has
        ``NAME-train.arff`` and ``NAME-test.arff`` beside it reads those two.
    xml_path : path-like, optional
        The MULAN XML label file. Default: ``NAME.xml`` beside the (first) ARFF file; without
        one, a MEKA ``-C N`` header.

    Returns
    -------
    features : pandas.DataFrame
        The non-label attributes in file order: numeric as float64 (``?`` is NaN), nominal as
        ``Categorical`` with the declared categories, string/date as str.
    labels : LabelMatrix
        The label attributes in ARFF order.

    Raises
    ------
    InputError
        Missing file, an ARFF without label attributes, an XML naming labels the ARFF lacks,
        a malformed row or value (the message names the file and line).
    """
    if isinstance(arff_path, (str, os.PathLike)):
        p = Path(arff_path)
        if not p.exists():
            halves = [p.with_name(f"{p.stem}-{part}{p.suffix}") for part in ("train", "test")]
            if all(h.is_file() for h in halves):
                paths = halves
            else:
                raise InputError(f"{p}: no such file")
        else:
            paths = [p]
    else:
        paths = [Path(x) for x in arff_path]
        if not paths:
            raise InputError("read_arff: no ARFF file given")
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    xml = Path(xml_path) if xml_path is not None else find_xml(paths[0])
    if xml is None:
        xml = next((x for x in (find_xml(p) for p in paths) if x), None)
    label_names = read_mulan_xml(xml) if xml is not None else None
    parts = [_read_one(p, label_names, xml) for p in paths]
    if len(parts) == 1:
        return parts[0]
    first_names = parts[0][1].names
    first_cols = list(parts[0][0].columns)
    for (f, lm), p in zip(parts[1:], paths[1:], strict=True):
        if lm.names != first_names or list(f.columns) != first_cols:
            raise InputError(f"{p}: its attributes differ from {paths[0]}'s; cannot concatenate")
    feats = pd.concat([f for f, _ in parts], ignore_index=True)
    labels = LabelMatrix(sp.vstack([lm.matrix for _, lm in parts], format="csr"), first_names)
    return feats, labels
