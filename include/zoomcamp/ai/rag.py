"""Flow 11's retrieval: chunk a document, embed the chunks with Gemini, keep them in DuckDB, find the closest.

Chunks are cut at Markdown headings, then at paragraphs, at most MAX_CHUNK_CHARS each, and carry
their section's heading. A chunk's id is the hash of its text (and heading): re-ingesting an
unchanged document finds every id already stored with the same embedding model and makes no
embedding call. The store is one DuckDB file under the data directory; an ingest with `drop`
replaces its chunks in one transaction (a failed ingest leaves the earlier chunks as they were).
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from airflow.sdk.exceptions import AirflowFailException

from include.zoomcamp import config
from include.zoomcamp.ai import gemini

log = logging.getLogger(__name__)

MAX_CHUNK_CHARS = 1200
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id VARCHAR PRIMARY KEY,
    position INTEGER NOT NULL,
    heading VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    source_url VARCHAR NOT NULL,
    embedding_model VARCHAR NOT NULL,
    embedding FLOAT[] NOT NULL
)
"""


@dataclass(frozen=True)
class Chunk:
    id: str
    position: int
    heading: str
    text: str


def store_path() -> Path:
    return config.data_dir() / "ai" / config.RAG_STORE_FILE


def chunk_id(heading: str, text: str) -> str:
    return hashlib.sha256(f"{heading}\n{text}".encode()).hexdigest()[:16]


def split_document(markdown: str, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Sections at headings, paragraphs within them, merged up to `max_chars`; longer paragraphs cut at words."""
    pieces: list[tuple[str, str]] = []  # (heading, paragraph)
    heading, paragraph = "", []
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match or (not in_code and not line.strip()):
            if paragraph:
                pieces.append((heading, "\n".join(paragraph).strip()))
                paragraph = []
            if match:
                heading = match.group(1).strip()
            continue
        paragraph.append(line)
    if paragraph:
        pieces.append((heading, "\n".join(paragraph).strip()))

    texts: list[tuple[str, str]] = []
    for head, para in pieces:
        for part in _cut(para, max_chars):
            if texts and texts[-1][0] == head and len(texts[-1][1]) + len(part) + 2 <= max_chars:
                texts[-1] = (head, texts[-1][1] + "\n\n" + part)
            else:
                texts.append((head, part))
    chunks, seen = [], set()
    for head, text in texts:
        cid = chunk_id(head, text)
        if cid not in seen:  # a repeated block (e.g. the same image caption) is kept once
            seen.add(cid)
            chunks.append(Chunk(cid, len(chunks), head, text))
    return chunks


def _cut(text: str, max_chars: int) -> list[str]:
    parts, current = [], ""
    for word in text.split(" "):
        if current and len(current) + 1 + len(word) > max_chars:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        parts.append(current)
    return parts


def fetch_document(url: str) -> str:
    """The document's text; a 4xx answer fails at once (naming the Variable), 5xx/network errors are retried."""
    import requests

    response = requests.get(url, timeout=60)
    if 400 <= response.status_code < 500:
        raise AirflowFailException(f"{url} answered HTTP {response.status_code}: no document there "
                                   f"(Variable {config.RAG_DOCUMENT_URL_VAR})")
    response.raise_for_status()
    if not response.text.strip():
        raise AirflowFailException(f"{url} returned an empty document (Variable {config.RAG_DOCUMENT_URL_VAR})")
    return response.text


def _connect(path: Path):
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(SCHEMA)
    return con


def ingest(url: str, drop: bool = True, path: Path | None = None) -> dict:
    """Fetch, chunk, embed what is not stored yet, store. Returns counts for the log and XCom."""
    settings = gemini.gemini_settings()  # no key: fail before any download
    chunks = split_document(fetch_document(url))
    if not chunks:
        raise AirflowFailException(f"{url}: no text to ingest")
    path = path or store_path()
    con = _connect(path)
    try:
        known = dict(con.execute("SELECT id, embedding FROM chunks WHERE embedding_model = ?",
                                 [settings.embedding_model]).fetchall())
        new = [c for c in chunks if c.id not in known]
        vectors = gemini.embed([_embedded_text(c) for c in new], settings=settings, task_type="RETRIEVAL_DOCUMENT")
        known.update({c.id: v for c, v in zip(new, vectors)})
        rows = [(c.id, c.position, c.heading, c.text, url, settings.embedding_model, known[c.id]) for c in chunks]
        con.execute("BEGIN TRANSACTION")
        if drop:
            con.execute("DELETE FROM chunks")
        else:
            con.execute("DELETE FROM chunks WHERE id IN (SELECT unnest(?::VARCHAR[]))", [[c.id for c in chunks]])
        con.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
        stored = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
    finally:
        con.close()
    summary = {"chunks": len(chunks), "embedded": len(new), "reused": len(chunks) - len(new),
               "stored": stored, "store": str(path)}
    log.info("Ingested %s: %s chunks (%s embedded, %s unchanged and reused), %s in the store %s",
             url, summary["chunks"], summary["embedded"], summary["reused"], stored, path)
    return summary


def _embedded_text(chunk: Chunk) -> str:
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def retrieve(question: str, top_k: int, path: Path | None = None) -> list[dict]:
    """The `top_k` stored chunks closest to the question (cosine similarity), best first."""
    settings = gemini.gemini_settings()
    path = path or store_path()
    if not path.exists():
        raise AirflowFailException(f"No RAG store at {path}: run the ingest task of 11_chat_with_rag first")
    (vector,) = gemini.embed([question], settings=settings, task_type="RETRIEVAL_QUERY")
    con = _connect(path)
    try:
        rows = con.execute(
            """SELECT id, heading, text, list_cosine_similarity(embedding, ?::FLOAT[]) AS score
               FROM chunks WHERE embedding_model = ? ORDER BY score DESC, position LIMIT ?""",
            [vector, settings.embedding_model, top_k],
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise AirflowFailException(f"The RAG store {path} holds no chunks embedded with {settings.embedding_model}: "
                                   "run the ingest task first")
    found = [{"id": r[0], "heading": r[1], "text": r[2], "score": round(float(r[3]), 4)} for r in rows]
    log.info("Retrieved chunks (id: cosine score): %s", sources_line(found))
    return found


def sources_line(chunks: list[dict]) -> str:
    return ", ".join(f"{c['id']}: {c['score']}" for c in chunks)


def context_prompt(question: str, chunks: list[dict]) -> str:
    """The question with the retrieved documentation, each excerpt marked `[chunk <id>]`."""
    excerpts = "\n\n".join(f"[chunk {c['id']}] {c['heading']}\n{c['text']}" for c in chunks)
    return f"Documentation excerpts:\n\n{excerpts}\n\nQuestion: {question}"
