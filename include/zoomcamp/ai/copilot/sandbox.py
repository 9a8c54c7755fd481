"""Run Python code nobody reviewed in a bubblewrap sandbox (Linux namespaces), or say why it cannot run here.

Inside the sandbox:
- no network: a network namespace of its own, holding only a loopback interface nothing listens on;
- its own PID, IPC and UTS namespaces, and a user namespace without any capability (uid 65534 inside),
  from which no further user namespace can be created;
- read-only: the system's libraries and executables, the Python installation (interpreter, standard
  library, site-packages) and the directories the caller names — nothing else of the host (no project,
  no home, no `/etc` but the dynamic linker's cache); a private tmpfs `/tmp` is the only writable place;
- an empty environment but for what the caller sets (HOME and TMPDIR are `/tmp`);
- rlimits set by `prlimit` before bwrap starts, inherited by every process inside (address space, CPU
  seconds, processes, file size, open files, no core dumps), a size limit on `/tmp`, and a wall-clock
  limit after which the sandbox's init is killed (the kernel ends its whole PID namespace), then bwrap's
  process group; `--die-with-parent` does the same when the caller dies. When the sandboxed program
  ends, its namespace ends too, so nothing it started outlives it.

Input goes in on stdin, results come back on stdout; neither passes through a file the sandbox can reach.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from include.zoomcamp import config

PRIVATE_DIR = "/tmp"  # the sandbox's own tmpfs: its only writable place
SANDBOX_UID = 65534  # "nobody", inside the user namespace
TRIAL_TIMEOUT_S = 60
KILL_WAIT_S = 30  # for the kernel to end the processes of a killed sandbox
MAX_OUTPUT_BYTES = 4 << 20  # of stdout read back; stderr is kept by its end
SYSTEM_PATHS = ("/usr/bin", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/share/zoneinfo",
                "/bin", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache")


@dataclass(frozen=True)
class Limits:
    wall_s: int = 180
    cpu_s: int = 120  # per process
    address_space_bytes: int = 2 << 30  # a DagBag import of a Google provider DAG peaks near 560 MiB
    processes: int = 64  # per user: the kernel does not apply it to root (see docs/ai.md)
    file_bytes: int = 64 << 20
    open_files: int = 512
    tmp_bytes: int = 256 << 20


@dataclass(frozen=True)
class Completed:
    returncode: int | None  # None: killed at the wall-clock limit
    stdout: bytes
    stderr: bytes

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class Unavailable(RuntimeError):
    """No sandbox here: the message says why and what to install."""


def unavailable_reason() -> str | None:
    """None when the sandbox works on this machine, else why not (checked once per bwrap and prlimit found)."""
    bwrap_name = os.environ.get(config.COPILOT_BWRAP_ENV) or "bwrap"
    bwrap = shutil.which(bwrap_name)
    if bwrap is None:
        return (f"bubblewrap (`{bwrap_name}`) is not installed or not on PATH: install the Debian package "
                "`bubblewrap`")
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return "`prlimit` (Debian package util-linux) is not on PATH"
    try:
        _binds(())
    except Unavailable as problem:
        return str(problem)
    return _trial(bwrap, prlimit)


@functools.cache
def _trial(bwrap: str, prlimit: str) -> str | None:
    """Start the interpreter in the sandbox once: namespaces and mounts are allowed here, or the reason not."""
    command = _command(bwrap, prlimit, Limits(), (), {}, ["-c", "pass"])
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=TRIAL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"bubblewrap did not start Python within {TRIAL_TIMEOUT_S} s"
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return (f"bubblewrap cannot create its sandbox here ({said[-1] if said else f'exit {done.returncode}'}): "
                "it needs user, PID and network namespaces (containers often forbid them)")
    return None


def run_python(args: list[str], *, stdin: bytes, readable: Iterable[Path] = (),
               env: Mapping[str, str] | None = None, limits: Limits = Limits()) -> Completed:
    """`python <args>` in the sandbox, with `readable` directories visible read-only at their own paths.
    Raises Unavailable when there is no sandbox here."""
    reason = unavailable_reason()
    if reason:
        raise Unavailable(reason)
    bwrap = shutil.which(os.environ.get(config.COPILOT_BWRAP_ENV) or "bwrap")
    info_read, info_write = os.pipe()  # bwrap tells the pid of the sandbox's init on it
    os.set_blocking(info_read, False)
    command = _command(bwrap, shutil.which("prlimit"), limits, tuple(readable), dict(env or {}), args,
                       info_fd=info_write)
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        given.write(stdin)
        given.seek(0)
        try:
            process = subprocess.Popen(command, stdin=given, stdout=out, stderr=err, start_new_session=True,
                                       pass_fds=(info_write,))
        finally:
            os.close(info_write)
        try:
            returncode = process.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if process.returncode is None:  # over time, or the caller was interrupted: the whole tree goes
                _end(process, info_read)
            os.close(info_read)
        out.seek(0)
        stdout = out.read(MAX_OUTPUT_BYTES)
        err.seek(max(0, os.fstat(err.fileno()).st_size - MAX_OUTPUT_BYTES))
        return Completed(returncode, stdout, err.read())


def _end(process: subprocess.Popen, info_read: int) -> None:
    """Kill the sandbox's init: the kernel ends every process of its PID namespace before the init is gone,
    and bwrap exits once it is, so nothing is left when this returns. bwrap's process group goes too."""
    try:
        init_pid = json.loads(os.read(info_read, 65536))["child-pid"]
    except (OSError, ValueError, KeyError, TypeError):
        init_pid = None  # bwrap had not set the sandbox up yet
    if init_pid:
        os.kill(init_pid, signal.SIGKILL)  # still bwrap's unreaped child: the pid cannot be anyone else's
        try:
            process.wait(timeout=KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
    if process.returncode is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _command(bwrap: str, prlimit: str, limits: Limits, readable: tuple[Path, ...], env: dict[str, str],
             args: list[str], info_fd: int | None = None) -> list[str]:
    python_bin = str(Path(sys.executable).parent)
    environment = {"PATH": f"{python_bin}:/usr/bin:/bin", "HOME": PRIVATE_DIR, "TMPDIR": PRIVATE_DIR,
                   "LANG": "C.UTF-8", **env}
    return [
        prlimit, f"--as={limits.address_space_bytes}", f"--cpu={limits.cpu_s}", f"--nproc={limits.processes}",
        f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--core=0", "--",
        bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
        "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv",
        *(["--info-fd", str(info_fd)] if info_fd is not None else []),
        # the private /tmp first: the read-only paths bound next stay visible where they live under /tmp
        "--size", str(limits.tmp_bytes), "--tmpfs", PRIVATE_DIR,
        *_binds(readable),
        "--proc", "/proc", "--dev", "/dev", "--chdir", PRIVATE_DIR,
        *[arg for name, value in environment.items() for arg in ("--setenv", name, value)],
        "--", sys.executable, *args,
    ]


def _binds(readable: tuple[Path, ...]) -> list[str]:
    """bwrap's arguments for the read-only view: symlinks recreated, directories and files bound as they are."""
    args = []
    for path in _visible_paths(readable):
        if path.is_symlink() and str(path) in SYSTEM_PATHS:  # /lib -> usr/lib on merged-/usr systems
            args += ["--symlink", os.readlink(path), str(path)]
        else:
            args += ["--ro-bind", str(path), str(path)]
    return args


def _visible_paths(readable: tuple[Path, ...]) -> list[Path]:
    paths = {Path(p) for p in SYSTEM_PATHS if os.path.lexists(p)}
    paths |= python_installation()
    paths |= {Path(p).resolve() for p in readable}
    protected = _protected_paths()
    for path in paths:
        exposed = [p for p in protected if p.is_relative_to(path.resolve())]
        if exposed:
            raise Unavailable(f"the sandbox would have to show {path}, which holds {exposed[0]}: install Python "
                              "and its packages outside the project, the data directory and the home directory")
    kept: list[Path] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):  # a directory shown shows what it contains
        if not any(path.is_relative_to(shown) for shown in kept if not shown.is_symlink()):
            kept.append(path)
    return kept


def python_installation() -> set[Path]:
    """What running this interpreter needs: every link from `sys.executable` to the binary, the standard
    library, site-packages, the venv's pyvenv.cfg and a shared libpython."""
    paths = set()
    link = Path(sys.executable)
    for _ in range(40):  # a symlink chain, e.g. .venv/bin/python -> python3 -> /usr/bin/python3.11
        paths.add(link.parent)
        if not link.is_symlink():
            break
        link = link.parent / os.readlink(link)
    installed = sysconfig.get_paths()
    paths |= {Path(installed[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths |= {Path(p) for p in site.getsitepackages()}
    if site.ENABLE_USER_SITE:
        paths.add(Path(site.getusersitepackages()))
    if sys.prefix != sys.base_prefix:
        paths.add(Path(sys.prefix) / "pyvenv.cfg")
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):  # the interpreter links libpython.so.1.0 at start
        library_dir = Path(sysconfig.get_config_var("LIBDIR"))
        paths |= {library_dir / sysconfig.get_config_var(name) for name in ("LDLIBRARY", "INSTSONAME")}
    return {p for p in paths if p.exists()}


def _protected_paths() -> list[Path]:
    """Places the sandbox must never show: the project (all but what a caller names), the data directory
    (services' files, the Airflow admin's password), AIRFLOW_HOME and the home directory."""
    places = [config.PROJECT_ROOT, config.data_dir(), Path.home()]
    if os.environ.get("AIRFLOW_HOME"):
        places.append(Path(os.environ["AIRFLOW_HOME"]))
    return [p.resolve() for p in places]
