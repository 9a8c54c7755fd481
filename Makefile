# Two commands on a new machine: `make run` (Airflow UI + embedded services) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run services stop test test-fast lint bench clean run-git

# Python writes each module's bytecode the first time it is imported, so the install compiles nothing and
# only what the processes import is compiled (docs/operations.md#installing).
unexport PYTHONDONTWRITEBYTECODE

# uv (pinned in constraints.txt, installed from PyPI into .venv by pip) installs the same pins as
# pip would, several times faster (figures: docs/operations.md#installing).
$(STAMP): requirements.txt requirements-local.txt requirements-emulators.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check uv -c constraints.txt || { \
	  echo "make: could not install uv (pinned in constraints.txt) from PyPI into $(VENV)." >&2; \
	  echo "      Check the network or proxy (pip's own settings apply), then run make again." >&2; \
	  exit 1; }
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-local.txt -c constraints.txt
	touch $(STAMP)

# GCP=emulators|real: which GCP the DAGs use (docs/gcp.md); remembered in zoomcamp.env for later runs.
GCP_FLAG = $(if $(GCP),--gcp $(GCP))
# EXECUTOR=local|celery, WORKERS=<n>: the LocalExecutor, or Redis and n Celery workers (docs/operations.md#scale-out-celery-workers).
EXECUTOR_FLAGS = $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(WORKERS),--workers $(WORKERS))

## run: start PostgreSQL 18 (ny_taxi), write devstack.env, start Airflow on http://127.0.0.1:8080; Ctrl-C stops all
##   make run GCP=real: against your own GCP project (no emulators); make run GCP=emulators: back (docs/gcp.md)
##   make run EXECUTOR=celery WORKERS=2: tasks on Celery workers (Redis: apt-get install redis-server)
run: $(STAMP)
	$(BIN)/python -m devstack run $(GCP_FLAG) $(EXECUTOR_FLAGS)

## services: start only the embedded services in the background and write devstack.env (GCP= as for run)
services: $(STAMP)
	$(BIN)/python -m devstack services $(GCP_FLAG)

## stop: stop the embedded services
stop: $(STAMP)
	$(BIN)/python -m devstack stop

# The markers (pytest.ini) of the tests only the full suite runs; the fast tier is every other test.
FULL_ONLY := stack or browser or jdk or virtualenv or deploy or pubsub_google
FAST_WORKERS ?= 3
TEST_SEED ?= 20261203
ORDER = --random-order-bucket=module --random-order-seed=$(TEST_SEED)
# pytest's exit code 5 (no test selected: PYTEST_ARGS named only tests of the other part) is not a failure.
PART_PASSED = rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc

## test: the whole suite, first the fast tier's tests (as test-fast does), then the rest in one process;
##   each part in a shuffled order that is the same on every run (TEST_SEED; another order:
##   make test TEST_SEED=N), on its own throw-away embedded services; first installs the system tools it
##   drives (chromium, a JDK, Maven, bubblewrap, redis-server) where it can, else names the command
test: $(STAMP)
	$(BIN)/python -m devstack.system_packages --install
	$(BIN)/python -m pytest -m "not ($(FULL_ONLY))" -n $(FAST_WORKERS) --dist loadfile $(ORDER) $(PYTEST_ARGS); \
		$(PART_PASSED)
	$(BIN)/python -m pytest -m "$(FULL_ONLY)" $(ORDER) $(PYTEST_ARGS); $(PART_PASSED)

## test-fast: the inner loop: every test that needs no Airflow stack, browser, JDK,
##   virtualenv build, deployment tool or Google's Pub/Sub emulator (docs/operations.md#tests), spread
##   file by file over FAST_WORKERS processes, each with its own services
test-fast: $(STAMP)
	$(BIN)/python -m devstack.system_packages --install sandbox
	$(BIN)/python -m pytest -m "not ($(FULL_ONLY))" -n $(FAST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## lint: ruff (pycodestyle, Pyflakes, import order, Airflow's AIR rules; settings in ruff.toml)
lint: $(STAMP)
	$(BIN)/ruff check dags include plugins tests bench devstack .astro

## bench: one month against a bare COPY, a month's load as the table fills, a 31-month backfill
## through the scheduler, upload-to-rows latency of the event-driven ingest, the dashboard on 10 000
## runs, an idle `make run`'s memory, the first `make run` of a fresh clone of HEAD (prints figures;
## docs/operations.md#benchmarks, docs/walkthrough.md)
bench: $(STAMP)
	$(BIN)/python -m bench.taxi_load
	$(BIN)/python -m bench.table_growth
	$(BIN)/python -m bench.backfill
	$(BIN)/python -m bench.event_latency
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.idle_stack
	$(BIN)/python -m bench.first_run

clean: stop
	rm -rf .local devstack.env

## run-git: `make run` with DAGs synced from Git too: one bundle per folder (docs/operations.md#git-synced-dags)
##   make run-git REPO=https://github.com/you/flows.git BUNDLES="dev=dev.testing,common" [BRANCH=main] [REFRESH=60] [LOCAL_DAGS=0]
##   The token goes in the git_default connection (e.g. export AIRFLOW_CONN_GIT_DEFAULT), never in REPO.
run-git: $(STAMP)
	@test -n "$(REPO)" || { echo 'make run-git: set REPO=<repository URL> and BUNDLES="<folder>=<bundle>,..."' >&2; exit 2; }
	ZOOMCAMP_GIT_REPO='$(REPO)' ZOOMCAMP_GIT_BUNDLES='$(BUNDLES)' ZOOMCAMP_GIT_BRANCH='$(BRANCH)' \
	  ZOOMCAMP_GIT_REFRESH='$(REFRESH)' ZOOMCAMP_GIT_LOCAL_DAGS='$(LOCAL_DAGS)' $(BIN)/python -m devstack run
