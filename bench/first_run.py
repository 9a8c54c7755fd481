"""The first `make run` of a fresh clone: `git clone` of this repository's HEAD into a temporary directory, then
`make run` there (its own .venv, throw-away data and free ports; the package cache as the machine has it) until
the UI answers.

`python -m bench.first_run`. Prints the time to a UI that answers and where it goes: the install (until
`.venv/.installed`), the services, the metadata set-up and Airflow's components until the api-server answers
(bench.idle_stack.START_PHASES); the last line is `first_run_to_ui_s=… install_s=…`. Asserts nothing.
Stopped with Ctrl-C, as a user stops it.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.idle_stack import OutputTimes
from bench.services import machine_line
from tests.fixtures.devstack_run import devstack_env
from tests.fixtures.polling import poll_until

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 900  # seconds: an install with a cold package cache included
UI_LINE = re.compile(r"^Airflow UI: (http://\S+)", re.M)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> None:
    print(machine_line())
    root = Path(tempfile.mkdtemp(prefix="zoomcamp-bench-first-run-"))
    clone = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    env = devstack_env(root, quick=False)  # the user's HOME: its package cache
    log = root / "make-run.log"
    started = time.monotonic()
    times = OutputTimes(log, started)
    times.start()
    with open(log, "wb") as out:
        proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        installed = poll_until(lambda: (clone / ".venv" / ".installed").exists() and time.monotonic() - started,
                               START_TIMEOUT, f"the install did not finish; see {log}", interval=0.2)
        url = poll_until(lambda: (m := UI_LINE.search(log.read_text(errors="replace"))) and m.group(1),
                         START_TIMEOUT, f"no UI address; see {log}", interval=0.2)
        poll_until(lambda: _answers(url), START_TIMEOUT, f"the UI did not answer; see {log}", interval=0.2)
        ui = time.monotonic() - started
        times.done.set()
        print(f"first make run to a UI that answers: {ui:.1f} s (git clone done; install, services, metadata "
              "set-up, Airflow's components, until the api-server answers)")
        previous = 0.0
        for phase, at in sorted({"install": installed, **times.seen, "components until the UI answers": ui}.items(),
                                key=lambda item: item[1]):
            print(f"  {phase:<40} {at - previous:6.1f} s")
            previous = at
        print(f"first_run_to_ui_s={ui:.1f} install_s={installed:.1f}")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["make", "stop"], cwd=clone, env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
