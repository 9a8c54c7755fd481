"""Which file a month is, where it is published, and how it is read safely.

`download` streams the published .gz to disk with its checksum (a rerun of an unchanged file can
stop there); `checked_csv_chunks` decompresses it, checking on the way that the gzip stream is
complete and that the header is the expected one, and counts its rows; `verify_gz_file` also
checks that every row has the schema's number of fields (the one-pass load has DuckDB check that,
row_ids.py). Memory stays bounded (chunks of 256 KiB) whatever the file size; a CSV written on the
way only gets its final name once all of it has passed: nothing downstream sees an unverified file.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from zlib_ng import zlib_ng

from include.zoomcamp.errors import PermanentError, RetryableError
from include.zoomcamp.taxi.schemas import TaxiSchema, schema_for

CHUNK_BYTES = 1 << 18
# Four ASCII digits: not "2019\n" (which `$` lets through), not other scripts' digits (which `\d` matches).
YEAR_DIGITS = "[0-9]{4}"
MONTHS = tuple(f"{m:02d}" for m in range(1, 13))


class TaxiFileError(PermanentError, ValueError):
    """The taxi file cannot be loaded as it is; the message says what is wrong."""


class TaxiFileTruncated(RetryableError, TaxiFileError):
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
        if not re.fullmatch(YEAR_DIGITS, str(self.year)):
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
class VerifiedFile:
    """A downloaded month (.gz on local disk), checked from end to end."""

    gz_path: Path
    file_name: str
    content_md5: str  # of the .gz: a rerun of an unchanged file is recognised by it
    compressed_bytes: int
    uncompressed_bytes: int
    rows: int
    # No quotes, backslashes, carriage returns or control byte 0x01: every line is its fields joined
    # by commas, so it can be handled as plain text (the course's files are all like this).
    plain: bool

    def csv_chunks(self) -> Iterator[bytes]:
        """The CSV (header included), decompressed again in chunks."""
        return _gunzip(_read_chunks(self.gz_path), self.file_name)


# Bytes whose presence anywhere makes a file not `plain`.
NOT_PLAIN = (b'"', b"\\", b"\r", b"\x01")


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


class FileTally:
    """What a pass over a month's CSV counted, chunk by chunk (see `checked_csv_chunks`)."""

    def __init__(self) -> None:
        self.size = self.newlines = 0
        self.plain, self.ends_with_newline = True, True

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.newlines += chunk.count(b"\n")
        self.plain = self.plain and not any(byte in chunk for byte in NOT_PLAIN)
        self.ends_with_newline = chunk.endswith(b"\n")

    @property
    def rows(self) -> int:
        return self.newlines - 1 + (0 if self.size == 0 or self.ends_with_newline else 1)

    def verified(self, downloaded: Download, file_name: str) -> VerifiedFile:
        return VerifiedFile(downloaded.path, file_name, downloaded.md5, downloaded.compressed_bytes, self.size,
                            self.rows, self.plain)


def checked_csv_chunks(downloaded: Download, schema: TaxiSchema, file_name: str, tally: FileTally) -> Iterator[bytes]:
    """The CSV in chunks (header included) once its header has been checked, counted into `tally`.

    Raises TaxiFileError on a wrong header, TaxiFileTruncated when the gzip stream ends early; row
    widths are left to the caller.
    """
    for chunk in _checked_header(_gunzip(_read_chunks(downloaded.path), file_name), schema, file_name):
        tally.add(chunk)
        yield chunk


def verify_gz_file(
    downloaded: Download, schema: TaxiSchema, file_name: str, csv_dest: Path | None = None
) -> VerifiedFile:
    """Check a downloaded month: complete gzip stream, expected header, every row's width.

    With `csv_dest`, also write the CSV there; it only gets that name once all of it has passed.
    A failure raises TaxiFileError (TaxiFileTruncated when a fresh download may fix it).
    """
    tally = FileTally()
    csv_chunks = checked_row_widths(checked_csv_chunks(downloaded, schema, file_name, tally), schema, file_name)
    partial = csv_dest.with_name(csv_dest.name + ".partial") if csv_dest else None
    try:
        with open(partial, "wb") if partial else nullcontext() as out:
            for chunk in csv_chunks:
                if out:
                    out.write(chunk)
        if partial:
            partial.rename(csv_dest)
    finally:
        if partial:
            partial.unlink(missing_ok=True)
    return tally.verified(downloaded, file_name)


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def _gunzip(chunks: Iterable[bytes], file_name: str) -> Iterator[bytes]:
    """Decompress a (possibly multi-member) gzip stream; fail clearly if it is cut short."""
    decompressor = zlib_ng.decompressobj(wbits=47)
    for chunk in chunks:
        while chunk:
            try:
                data = decompressor.decompress(chunk)
            except zlib_ng.error as exc:
                raise TaxiFileError(f"{file_name}.gz is not a valid gzip file ({exc})") from None
            if data:
                yield data
            chunk = decompressor.unused_data if decompressor.eof else b""
            if chunk:
                decompressor = zlib_ng.decompressobj(wbits=47)
    tail = decompressor.flush()
    if tail:
        yield tail
    if not decompressor.eof:
        raise TaxiFileTruncated(
            f"{file_name}.gz is truncated: the gzip stream ends before its end marker "
            "(an incomplete download; download the month again)"
        )


def _checked_header(chunks: Iterator[bytes], schema: TaxiSchema, file_name: str) -> Iterator[bytes]:
    """Pass CSV chunks through after checking the first line against the schema."""
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


def checked_row_widths(chunks: Iterable[bytes], schema: TaxiSchema, file_name: str) -> Iterator[bytes]:
    """Pass CSV chunks through, failing on the first row whose field count is not the schema's."""
    expected = len(schema.columns) - 1  # commas per row; the course's files have no quoted fields
    carry, lines_before = b"", 0
    for chunk in chunks:
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        if set(map(bytes.count, lines, repeat(b","))) - {expected}:
            _raise_bad_width(file_name, lines, expected, lines_before)
        lines_before += len(lines)
        yield chunk
    if carry and carry.count(b",") != expected:
        _raise_bad_width(file_name, [carry], expected, lines_before)


def _raise_bad_width(file_name: str, lines: list[bytes], expected: int, lines_before: int) -> None:
    index = next(i for i, line in enumerate(lines) if line.count(b",") != expected)
    found = lines[index].count(b",") + 1 if lines[index].strip() else 0
    raise TaxiFileError(
        f"{file_name}, line {lines_before + index + 1}: {found} fields where {expected + 1} are expected "
        f"({'a truncated or corrupt file' if found < expected + 1 else 'extra fields'}); nothing was loaded"
    )


def describe_copy_error(file_name: str, exc: Exception) -> str:
    """Turn a COPY error (a value Postgres rejects) into a message naming the file and the line."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    context = getattr(diag, "context", None) or ""
    line = re.search(r"line (\d+)", context)
    where = f"line {line.group(1)}" if line else "a row"
    return f"{file_name}, {where}: {primary}; nothing was loaded"
