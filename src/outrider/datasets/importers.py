"""Importers from common annotation formats into Outrider's example formats.

- CoNLL (BIO, also BIOES): one ``token<TAB or space>...tag`` per line (first column the token, last the
  tag), sentences separated by blank or whitespace-only lines, ``-DOCSTART-`` lines skipped. Tokens are
  joined with single spaces and entity offsets computed on that text -> ``ner`` examples.
- CSV with a header: a ``text`` column and a ``label`` (or ``category``/``intent``/``class``) column ->
  ``classification`` examples.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from outrider.core.errors import InvalidRequest

IMPORT_FORMATS = {"conll": "ner", "csv": "classification"}
LABEL_COLUMNS = ("label", "category", "intent", "class")

# The csv module refuses fields over 128 KiB by default; a field is already bounded by the upload size limit
# (OUTRIDER_MAX_DATASET_UPLOAD_BYTES), as a JSONL text is, so a long document is accepted as in JSONL.
# (Process-wide, and only ever raised; 2**31 - 1 fits a C long everywhere.)
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def _decode(data: bytes | str, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the {what} file is not UTF-8 (byte {exc.start})", param="file") from exc


def conll_to_examples(data: bytes | str) -> list[dict]:
    """BIO-tagged CoNLL -> ``ner`` examples (one per sentence)."""
    examples: list[dict] = []
    tokens: list[tuple[str, str]] = []
    for number, line in enumerate(_decode(data, "CoNLL").splitlines(), start=1):
        if not line.strip():
            if tokens:
                examples.append(_sentence(tokens))
                tokens = []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        columns = line.split("\t") if "\t" in line else line.split()
        if len(columns) < 2 or not columns[0].strip():
            raise InvalidRequest(f"line {number}: expected 'token<TAB>tag', got {line!r}", param="file")
        tag = columns[-1].strip()
        if tag != "O" and (len(tag) < 3 or tag[1] != "-" or tag[0] not in "BIES"):
            raise InvalidRequest(f"line {number}: {tag!r} is not a BIO tag (O, B-type, I-type)", param="file")
        tokens.append((columns[0].strip(), tag))
    if tokens:
        examples.append(_sentence(tokens))
    if not examples:
        raise InvalidRequest("the CoNLL file holds no sentences", param="file")
    return examples


def _sentence(tokens: list[tuple[str, str]]) -> dict:
    text_parts: list[str] = []
    entities: list[dict] = []
    offset = 0
    current: dict | None = None
    for token, tag in tokens:
        start = offset
        text_parts.append(token)
        offset += len(token) + 1  # the joining space
        prefix, _, label = tag.partition("-")
        continues = prefix in ("I", "E") and current is not None and current["label"] == label
        if tag == "O" or not continues:
            current = None
        if tag == "O":
            continue
        if continues:
            current["end"] = start + len(token)
        else:
            current = {"start": start, "end": start + len(token), "label": label}
            entities.append(current)
        if prefix in ("E", "S"):
            current = None
    text = " ".join(text_parts)
    return {
        "text": text,
        "entities": [{**e, "text": text[e["start"] : e["end"]]} for e in entities],
    }


def csv_to_examples(data: bytes | str) -> list[dict]:
    """A CSV with a header naming a ``text`` column and a label column -> ``classification`` examples."""
    reader = csv.reader(io.StringIO(_decode(data, "CSV"), newline=""))
    try:
        return _csv_rows(reader)
    except csv.Error as exc:  # malformed quoting and the like: the client's file, named by line
        raise InvalidRequest(f"line {reader.line_num}: not valid CSV: {exc}", param="file") from exc


def _csv_rows(reader: Any) -> list[dict]:
    header = [h.strip().lower() for h in next(reader, [])]
    if "text" not in header:
        raise InvalidRequest(f"the CSV header needs a 'text' column; found {header}", param="file")
    label_column = next((c for c in LABEL_COLUMNS if c in header), None)
    if label_column is None:
        raise InvalidRequest(f"the CSV header needs a label column, one of {list(LABEL_COLUMNS)}", param="file")
    text_at, label_at = header.index("text"), header.index(label_column)
    examples = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        # reader.line_num is the physical line the row ended on (quoted fields may span lines).
        if len(row) <= max(text_at, label_at):
            raise InvalidRequest(f"line {reader.line_num}: expected {len(header)} columns", param="file")
        text, label = row[text_at], row[label_at].strip()
        if not text.strip() or not label:
            raise InvalidRequest(f"line {reader.line_num}: empty text or label", param="file")
        examples.append({"text": text, "label": label})
    if not examples:
        raise InvalidRequest("the CSV file holds no rows", param="file")
    return examples


def import_examples(fmt: str, data: bytes | str) -> tuple[str, list[dict]]:
    """``(task_type, examples)`` for a supported import format."""
    if fmt == "conll":
        return "ner", conll_to_examples(data)
    if fmt == "csv":
        return "classification", csv_to_examples(data)
    raise InvalidRequest(f"format must be one of {', '.join(IMPORT_FORMATS)}", param="format")
