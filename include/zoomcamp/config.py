"""Names shared by the DAGs, the local services and the tests: one place for each."""
import os
from pathlib import Path

TAG = "zoomcamp"

# Where `make run` and the tests keep their data (services, venvs, files the walkthrough's tasks write).
DATA_DIR_ENV = "ZOOMCAMP_DATA_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / ".local").resolve()


# Where tasks keep files that a later task or the user reads (flow 03's results, the copilot's drafts,
# walkthrough 2_1's files): an Airflow object-storage URL base. One machine: the data dir (file://), not
# a /tmp path other users can read or take. Tasks on several machines (CeleryExecutor, Docker Compose,
# Astro): a bucket every worker reaches, given in this variable (gs://<bucket>/<prefix>).
STORAGE_URL_ENV = "ZOOMCAMP_STORAGE_URL"


def storage_url(name: str) -> str:
    base = os.environ.get(STORAGE_URL_ENV, "").strip().rstrip("/") or data_dir().as_uri()
    return f"{base}/{name}"


# Postgres (course flows 04-05): connection set once for all Postgres tasks, like Kestra's pluginDefaults.
POSTGRES_CONN_ID = "ny_taxi"

# Where the course's taxi CSVs are published; a Variable so tests and mirrors can point elsewhere.
TAXI_DATA_BASE_URL_VAR = "taxi_data_base_url"
DEFAULT_TAXI_DATA_BASE_URL = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download"

# Flow 02: Docker Hub's public API for the kestra/kestra repository.
DOCKERHUB_API_URL_VAR = "dockerhub_api_url"
DEFAULT_DOCKERHUB_API_URL = "https://hub.docker.com/v2/repositories/kestra/kestra/"

# Flow 03: the getting-started products document and where its query result is kept.
PRODUCTS_URL_VAR = "products_url"
DEFAULT_PRODUCTS_URL = "https://dummyjson.com/products"
RESULTS_DIR_VAR = "zoomcamp_results_dir"


def default_results_dir() -> str:
    """Under the shared storage (storage_url), as the other files the DAGs keep."""
    return storage_url("results")


# Taxi loads (flows 04/05) share one pool, so backfills and manual runs together never load more
# months at once than the machine gains from. Two slots on a 2-core laptop (bench/backfill.py);
# the pool is created by `make run` / `make services` (devstack) and can be resized in the UI
# (Admin > Pools) or with `airflow pools set`.
TAXI_LOAD_POOL = "taxi_loads"
TAXI_LOAD_POOL_DOC = "Taxi month loads into Postgres (flows 04/05): months loaded at once"
TAXI_LOAD_SLOTS_ENV = "ZOOMCAMP_TAXI_LOAD_SLOTS"
DEFAULT_TAXI_LOAD_SLOTS = 2


def taxi_load_slots() -> int:
    return int(os.environ.get(TAXI_LOAD_SLOTS_ENV, DEFAULT_TAXI_LOAD_SLOTS))


# Taxi data is published for these months (both colours); later months answer HTTP 404.
FIRST_TAXI_MONTH = (2019, 1)
LAST_TAXI_MONTH = (2021, 7)

# GCP (course flows 06-09): the course's key/value names, here Airflow Variables.
GCP_CONN_ID = "google_cloud_default"
GCP_PROJECT_ID_VAR = "GCP_PROJECT_ID"
GCP_LOCATION_VAR = "GCP_LOCATION"
GCP_BUCKET_NAME_VAR = "GCP_BUCKET_NAME"
GCP_DATASET_VAR = "GCP_DATASET"
# Defaults that fit the local emulators started by `make run` / `make test`.
GCP_DEFAULTS = {
    GCP_PROJECT_ID_VAR: "zoomcamp-local",
    GCP_LOCATION_VAR: "europe-west2",
    GCP_BUCKET_NAME_VAR: "zoomcamp-local-bucket",
    GCP_DATASET_VAR: "zoomcamp",
}

# The Kestra-on-GCP walkthrough's flows: tagged `walkthrough` plus their Kestra namespace.
WALKTHROUGH_TAG = "walkthrough"
DEV_TESTING_NAMESPACE = "dev.testing"
YELLOW_CAB_TAG = "gcp.yellowcab"
ECOMMERCE_TAG = "gcp.ecommerce"
WALKTHROUGH_NAMESPACES = (DEV_TESTING_NAMESPACE, YELLOW_CAB_TAG, ECOMMERCE_TAG)

# Walkthrough 2_4: the orders CSV the subflow aggregates (the walkthrough's own file).
ORDERS_CSV_URL_VAR = "orders_csv_url"
DEFAULT_ORDERS_CSV_URL = "https://huggingface.co/datasets/kestra/datasets/raw/main/csv/orders.csv"

# Walkthrough yellow-cab ingest into dataset YellowCab.
YELLOW_CAB_DATASET = "YellowCab"
# Every load into YellowCab.raw_data (3_2, 3_3, 3_5 and its reconciliation) takes this pool's one slot:
# loads of one object generation from two DAGs never overlap, so each is loaded once (BigQuery lets two
# INSERTs run at once, each blind to the other's rows). Created by `make run` / `make services` (devstack);
# more slots would let two DAGs load the same object at once.
YELLOW_CAB_RAW_LOAD_POOL = "yellow_cab_raw_loads"
YELLOW_CAB_RAW_LOAD_POOL_DOC = "Loads into BigQuery YellowCab.raw_data (walkthrough 3_2, 3_3, 3_5): one at a time"
YELLOW_CAB_RAW_LOAD_SLOTS = 1


def pools(taxi_slots: int | None = None) -> list[tuple[str, int, str]]:
    """Every pool the DAGs use: (name, slots, description)."""
    return [(TAXI_LOAD_POOL, taxi_load_slots() if taxi_slots is None else taxi_slots, TAXI_LOAD_POOL_DOC),
            (YELLOW_CAB_RAW_LOAD_POOL, YELLOW_CAB_RAW_LOAD_SLOTS, YELLOW_CAB_RAW_LOAD_POOL_DOC)]


# Walkthrough 3_5 (event-driven ingest): GCS notification -> topic -> pull subscription.
EVENT_TOPIC = "file-upload-events"
EVENT_SUBSCRIPTION = "file-upload-sub"
EVENT_ACK_DEADLINE_SECONDS = 60
EVENT_PREFIX = "landing/"

# Which GCP the DAGs talk to (`make run GCP=emulators|real`, docs/gcp.md): devstack hands the mode to
# Airflow's processes in this variable; without it, the emulators when STORAGE_EMULATOR_HOST is set.
GCP_MODE_ENV = "ZOOMCAMP_GCP"
GCP_EMULATORS = "emulators"
GCP_REAL = "real"
GCP_MODES = (GCP_EMULATORS, GCP_REAL)


def gcp_mode() -> str:
    mode = os.environ.get(GCP_MODE_ENV, "").strip()
    if mode in GCP_MODES:
        return mode
    return GCP_EMULATORS if os.environ.get("STORAGE_EMULATOR_HOST") else GCP_REAL


def gcp_value(key: str) -> str:
    """A course key/value as known without the metadata database, at parse time: the environment form
    of the Variable (AIRFLOW_VAR_<KEY>, which devstack sets in real mode from zoomcamp.env, and which
    Airflow reads before the Variables stored in its database), else the emulators' default.

    Parse-time code (an AssetWatcher's trigger, an asset's URI) must use this, never Variable.get.
    """
    return os.environ.get(f"AIRFLOW_VAR_{key.upper()}") or GCP_DEFAULTS[key]


# AI with Gemini (course 2.5, flows 10/11, the copilot; walkthrough 4_1): one connection holds the API
# key (password), the models (extra) and an optional host (the API's base URL: a proxy or a stand-in).
# Its type is the common-ai provider's `pydanticai`, so the provider's LLM operators use it as it is.
GEMINI_CONN_ID = "gemini_default"
GEMINI_CONN_TYPE = "pydanticai"
GEMINI_CHAT_MODEL = "gemini-2.5-flash"
GEMINI_EMBEDDING_MODEL = "gemini-embedding-001"
# What `make run` puts in the password until the learner sets a real key.
GEMINI_KEY_PLACEHOLDER = "set-your-gemini-api-key"

# Flow 11: the document it answers from (the course's: Kestra 1.1's release notes) and its store.
RAG_DOCUMENT_URL_VAR = "rag_document_url"
DEFAULT_RAG_DOCUMENT_URL = (
    "https://raw.githubusercontent.com/kestra-io/docs/refs/heads/main/content/blogs/release-1-1.md"
)
# The chunks and their embeddings live in this table of the course's Postgres (connection POSTGRES_CONN_ID),
# which every worker reaches: ingest and retrieval may run on different machines.
RAG_TABLE = "rag_chunks"

# Walkthrough 4_1 (Kestra namespace gcp.ecommerce, ECOMMERCE_TAG): the gate a learner opens to let the demo pass.
DEMO_GATE_OPEN_VAR = "demo_gate_open"
# The failure explainer writes its note through Airflow's REST API with this connection (HTTP type: host =
# the API server's URL, login/password = a user allowed to edit task instances); without it, the log only.
AIRFLOW_API_CONN_ID = "airflow_api"

# AI copilot (course 2.5.3): valid drafts land here, outside dags/, so nothing generated runs unreviewed.
COPILOT_DRAFTS_DIR_VAR = "copilot_drafts_dir"
# The bubblewrap command the copilot imports drafts with (a name on PATH or a path; `bwrap` unless set).
# Not found, or unable to create its namespaces here: drafts are checked statically, not imported.
COPILOT_BWRAP_ENV = "ZOOMCAMP_COPILOT_BWRAP"


def default_copilot_drafts_dir() -> str:
    return storage_url("copilot-drafts")


# Walkthrough 2_1 (Python and Java): where tasks write the files later tasks and the user fetch — an
# ObjectStoragePath base, `file://` under the project's data dir by default (devstack's
# ZOOMCAMP_DATA_DIR), `gs://<bucket>/<prefix>` on GCP (read through connection GCP_CONN_ID).
WALKTHROUGH_STORAGE_BASE_VAR = "walkthrough_storage_base"
# Java tasks run in Docker containers or with a local JDK: docker | local | auto (see walkthrough/java_runner.py).
JAVA_RUNNER_ENV = "ZOOMCAMP_JAVA_RUNNER"

# Walkthrough 3_4 (retry & rollback): CSV files under yc-retry/ cleaned into this dataset.
YC_RETRY_DATASET = "yc_retry"

# Git-synced DAGs (walkthrough 2_2, course 2.6): the connection holding the repository token
# (conn type git, password = token); devstack/bundles.py names it in every GitDagBundle.
GIT_CONN_ID = "git_default"
