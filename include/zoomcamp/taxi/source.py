"""Which file a month is, where it is published, and how it is read safely.

The download goes to a local .gz file in bounded chunks (memory does not grow with file size);
`verified_csv_chunks` then decompresses it in chunks, checking the gzip stream is complete and the
header is the expected one. Row widths are checked by the loader's COPY, whose errors
`describe_copy_error` turns into a message that names the file and the line.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from include.zoomcamp.taxi.schemas import TaxiSchema, schema_for

CHUNK_BYTES = 1 << 20
YEAR_PATTERN = re.compile(r"^\d{4}$")
MONTHS = tuple(f"{m:02d}" for m in range(1, 13))


class TaxiFileError(ValueError):
    """The taxi file cannot be loaded as it is; the message says what is wrong."""


class TaxiFileTruncated(TaxiFileError):
    """The gzip stream ends early: an incomplete download, which a fresh download can fix."""


class TaxiFileNotPublished(TaxiFileError):
    """The month is not published (HTTP 404): retrying will not help."""


@dataclass(frozen=True)
class TaxiMonth:
    taxi: str
    year: str
    month: str

    def __post_init__(self) -> None:
        schema_for(self.taxi)  # raises with the list of valid colours
        if not YEAR_PATTERN.match(str(self.year)):
            raise ValueError(f"Invalid year {self.year!r}: expected four digits such as 2019")
        if self.month not in MONTHS:
            raise ValueError(f"Invalid month {self.month!r}: expected a two-digit month 01..12")

    @classmethod
    def from_logical_date(cls, taxi: str, logical_date) -> "TaxiMonth":
        """The course's `trigger.date | date('yyyy-MM')`: the month the schedule fired in."""
        return cls(taxi, f"{logical_date.year:04d}", f"{logical_date.month:02d}")

    @property
    def schema(self) -> TaxiSchema:
        return schema_for(self.taxi)

    @property
    def file_name(self) -> str:
        return self.schema.file_name(self.year, self.month)

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.taxi}/{self.file_name}.gz"


@dataclass(frozen=True)
class Download:
    path: Path
    md5: str
    compressed_bytes: int


def download(url: str, dest: Path, timeout: float = 60.0) -> Download:
    """Stream `url` to `dest`; a 404 raises TaxiFileNotPublished, other HTTP errors raise for a retry."""
    import requests

    digest = hashlib.md5()
    size = 0
    with requests.get(url, stream=True, timeout=timeout) as response:
        if response.status_code == 404:
            raise TaxiFileNotPublished(
                f"{url} answered HTTP 404: this month is not published "
                "(the course's data covers 2019-01 to 2021-07)"
            )
        response.raise_for_status()
        with open(dest, "wb") as out:
            for chunk in response.iter_content(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    return Download(dest, digest.hexdigest(), size)


def gunzip_chunks(path: Path) -> Iterator[bytes]:
    """Decompress a (possibly multi-member) gzip file in chunks; fail clearly if it is cut short."""
    decompressor = zlib.decompressobj(wbits=47)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            while chunk:
                try:
                    data = decompressor.decompress(chunk)
                except zlib.error as exc:
                    raise TaxiFileError(f"{path.name} is not a valid gzip file ({exc})") from None
                if data:
                    yield data
                chunk = decompressor.unused_data if decompressor.eof else b""
                if chunk:
                    decompressor = zlib.decompressobj(wbits=47)
    tail = decompressor.flush()
    if tail:
        yield tail
    if not decompressor.eof:
        raise TaxiFileTruncated(
            f"{path.name} is truncated: the gzip stream ends before its end marker "
            "(an incomplete download; download the month again)"
        )


def verified_csv_chunks(path: Path, schema: TaxiSchema, file_name: str) -> Iterator[bytes]:
    """The CSV bytes of a downloaded .gz, after checking its header against the schema."""
    chunks = gunzip_chunks(path)
    head = b""
    for chunk in chunks:
        head += chunk
        if b"\n" in head or len(head) > 65536:
            break
    header = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    if header != schema.csv_header:
        raise TaxiFileError(
            f"{file_name} has an unexpected header.\n  expected: {schema.csv_header}\n  found:    {header[:500]}"
        )
    yield head
    yield from chunks


def describe_copy_error(file_name: str, exc: Exception) -> str:
    """Turn a COPY error (short row, extra field, bad value) into a message naming file and line."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    context = getattr(diag, "context", None) or ""
    line = re.search(r"line (\d+)", context)
    where = f"line {line.group(1)}" if line else "a row"
    hint = ""
    if "missing data for column" in primary:
        hint = " (the row has too few fields: a truncated or corrupt file)"
    elif "extra data after last expected column" in primary:
        hint = " (the row has too many fields)"
    return f"{file_name}, {where}: {primary}{hint}; nothing was loaded"


def checked_row_widths(chunks: Iterator[bytes], schema: TaxiSchema, file_name: str) -> Iterator[bytes]:
    """Pass CSV chunks through, failing on the first row whose field count is not the schema's.

    Used where no database parses the file before it is published (the GCS upload of flow 08), so
    a short row never reaches BigQuery's "CSV table references column position 17" error.
    """
    expected = len(schema.columns) - 1  # commas per row; the course's files have no quoted fields
    carry, lines_before = b"", 0
    for chunk in chunks:
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        counts = [line.count(b",") for line in lines]
        if counts and (min(counts) != expected or max(counts) != expected):
            _raise_bad_width(file_name, lines, counts, expected, lines_before)
        lines_before += len(lines)
        yield chunk
    if carry.strip() and carry.count(b",") != expected:
        _raise_bad_width(file_name, [carry], [carry.count(b",")], expected, lines_before)


def _raise_bad_width(file_name, lines, counts, expected, lines_before) -> None:
    index = next(i for i, count in enumerate(counts) if count != expected and lines[i].strip())
    found = counts[index] + 1
    raise TaxiFileError(
        f"{file_name}, line {lines_before + index + 1}: {found} fields where {expected + 1} are expected "
        f"({'a truncated or corrupt file' if found < expected + 1 else 'extra fields'}); nothing was uploaded"
    )


def write_verified_csv(gz_path: Path, schema: TaxiSchema, file_name: str, dest: Path) -> tuple[int, int]:
    """Decompress a downloaded month to `dest` after checking gzip, header and every row's width.

    Returns (uncompressed bytes, data rows). `dest` is only complete when this returns.
    """
    size = 0
    newlines = 0
    partial = dest.with_name(dest.name + ".partial")
    with open(partial, "wb") as out:
        for chunk in checked_row_widths(verified_csv_chunks(gz_path, schema, file_name), schema, file_name):
            size += len(chunk)
            newlines += chunk.count(b"\n")
            out.write(chunk)
            last = chunk
    partial.rename(dest)
    rows = newlines - 1 + (0 if size == 0 or last.endswith(b"\n") else 1)
    return size, rows
