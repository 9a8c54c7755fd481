"""Flow 11's retrieval: chunk a document, embed the chunks with Gemini, keep them in DuckDB, find the closest.

Chunks are cut at Markdown headings, then at paragraphs, at most MAX_CHUNK_CHARS each, and carry
their section's heading. A chunk's id is the hash of its text (and heading): re-ingesting an
unchanged document finds every id already stored with the same embedding model and makes no
embedding call. The store is a table of the course's Postgres (connection `ny_taxi`, table
`rag_chunks`), which every worker reaches: the ingest and the retrieval are separate tasks and may run on
different machines. An ingest with `drop` replaces its chunks in one transaction (a failed ingest leaves
the earlier chunks as they were); ingests take turns (a transaction-scoped advisory lock).
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from include.zoomcamp import config
from include.zoomcamp.ai import gemini
from include.zoomcamp.errors import PermanentError

log = logging.getLogger(__name__)

MAX_CHUNK_CHARS = 1200
_HEADING = re.compile(r"^#{1,6}\s+(.*)$")

TABLE = config.RAG_TABLE
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id text PRIMARY KEY,
    position integer NOT NULL,
    heading text NOT NULL,
    text text NOT NULL,
    source_url text NOT NULL,
    embedding_model text NOT NULL,
    embedding real[] NOT NULL
)
"""
# Cosine similarity of each stored embedding with the question's, in the database.
NEAREST = f"""
SELECT id, heading, text,
       (SELECT sum(a * b) / nullif(sqrt(sum(a * a)) * sqrt(sum(b * b)), 0)
        FROM unnest(embedding::float8[], %s::float8[]) AS pair(a, b)) AS score
FROM {TABLE}
WHERE embedding_model = %s
ORDER BY score DESC NULLS LAST, position
LIMIT %s
"""


@dataclass(frozen=True)
class Chunk:
    id: str
    position: int
    heading: str
    text: str


def _connect():
    """A connection to the store's database (connection `ny_taxi`), the table created when missing."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=config.POSTGRES_CONN_ID).get_conn()
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])  # CREATE ... IF NOT EXISTS races
        cur.execute(SCHEMA)
    conn.commit()
    return conn


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


class DocumentUnusable(PermanentError):
    """The document to ingest is not there or holds no text: a retry would fetch the same."""


class StoreEmpty(PermanentError):
    """The RAG store holds no chunks for the embedding model: the ingest has to run first."""


def fetch_document(url: str) -> str:
    """The document's text; a 4xx answer fails at once (naming the Variable), 5xx/network errors are retried."""
    import requests

    response = requests.get(url, timeout=60)
    if 400 <= response.status_code < 500:
        raise DocumentUnusable(f"{url} answered HTTP {response.status_code}: no document there "
                               f"(Variable {config.RAG_DOCUMENT_URL_VAR})")
    response.raise_for_status()
    if not response.text.strip():
        raise DocumentUnusable(f"{url} returned an empty document (Variable {config.RAG_DOCUMENT_URL_VAR})")
    return response.text


def ingest(url: str, drop: bool = True) -> dict:
    """Fetch, chunk, embed what is not stored yet, store. Returns counts for the log and XCom."""
    settings = gemini.gemini_settings()  # no key: fail before any download
    chunks = split_document(fetch_document(url))
    if not chunks:
        raise DocumentUnusable(f"{url}: no text to ingest")
    conn = _connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, embedding FROM {TABLE} WHERE embedding_model = %s", [settings.embedding_model])
            known = dict(cur.fetchall())
        conn.rollback()
        new = [c for c in chunks if c.id not in known]
        vectors = gemini.embed([_embedded_text(c) for c in new], settings=settings, task_type="RETRIEVAL_DOCUMENT")
        known.update({c.id: v for c, v in zip(new, vectors)})
        rows = [(c.id, c.position, c.heading, c.text, url, settings.embedding_model, list(known[c.id]))
                for c in chunks]
        with conn.cursor() as cur:  # one transaction: a failure leaves the earlier chunks as they were
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
            if drop:
                cur.execute(f"DELETE FROM {TABLE}")
            else:
                cur.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", [[c.id for c in chunks]])
            cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
            cur.execute(f"SELECT count(*) FROM {TABLE}")
            stored = cur.fetchone()[0]
        conn.commit()
    finally:
        conn.close()
    summary = {"chunks": len(chunks), "embedded": len(new), "reused": len(chunks) - len(new),
               "stored": stored, "store": f"{config.POSTGRES_CONN_ID}:{TABLE}"}
    log.info("Ingested %s: %s chunks (%s embedded, %s unchanged and reused), %s in the store %s",
             url, summary["chunks"], summary["embedded"], summary["reused"], stored, summary["store"])
    return summary


def _embedded_text(chunk: Chunk) -> str:
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


def retrieve(question: str, top_k: int) -> list[dict]:
    """The `top_k` stored chunks closest to the question (cosine similarity), best first."""
    settings = gemini.gemini_settings()
    conn = _connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {TABLE} WHERE embedding_model = %s", [settings.embedding_model])
            if not cur.fetchone()[0]:
                raise StoreEmpty(
                    f"The RAG store (table {TABLE} of connection {config.POSTGRES_CONN_ID}) holds no chunks embedded "
                    f"with {settings.embedding_model}: run the ingest task of 11_chat_with_rag first")
        conn.rollback()
        (vector,) = gemini.embed([question], settings=settings, task_type="RETRIEVAL_QUERY")
        with conn.cursor() as cur:
            cur.execute(NEAREST, [list(vector), settings.embedding_model, top_k])
            rows = cur.fetchall()
        conn.rollback()
    finally:
        conn.close()
    found = [{"id": r[0], "heading": r[1], "text": r[2], "score": round(float(r[3]), 4)} for r in rows]
    log.info("Retrieved chunks (id: cosine score): %s", sources_line(found))
    return found


def sources_line(chunks: list[dict]) -> str:
    return ", ".join(f"{c['id']}: {c['score']}" for c in chunks)


def context_prompt(question: str, chunks: list[dict]) -> str:
    """The question with the retrieved documentation, each excerpt marked `[chunk <id>]`."""
    excerpts = "\n\n".join(f"[chunk {c['id']}] {c['heading']}\n{c['text']}" for c in chunks)
    return f"Documentation excerpts:\n\n{excerpts}\n\nQuestion: {question}"
