"""The app under test and the machine it runs on, for ``benchmarks/run.py``.

* ``Server.start()`` runs the app as a child process (``benchmarks/launch_app.py``) on a free
  port of 127.0.0.1 with ``HF_HUB_OFFLINE=1``, its log in ``benchmarks/results/server-<port>.log``,
  and times process start -> first page served (``GET /`` answers 200); ``stop()`` ends it.
* ``proc_memory()``: current and peak resident memory of a process, from ``/proc/<pid>/status``.
* ``machine_info()`` / ``load_average()``: what the report says about the machine.
* ``endpoint_map()``: the running app's endpoints (discovered by ``harness.discover``).
* ``log()``: the benchmark's progress lines on stderr.

Not here: what is measured (``measure.py``, ``classroom.py``) and how it is reported
(``report.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks import harness
from benchmarks.harness import Endpoint

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    groups: dict[str, str]
    page_served_s: float
    log_path: Path
    torch_threads: int = 0

    @classmethod
    def start(cls, env_extra: dict[str, str] | None = None, timeout: float = 300.0) -> Server:
        """Start the app (same work as ``python app.py``) and wait for its first page."""
        port = free_port()
        RESULTS.mkdir(parents=True, exist_ok=True)
        groups_file = Path(tempfile.mkstemp(suffix=".json")[1])
        log_path = RESULTS / f"server-{port}.log"
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
               "PYTHONUNBUFFERED": "1", **(env_extra or {})}  # fmt: skip
        t0 = time.perf_counter()
        with open(log_path, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.launch_app", str(groups_file), str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        _wait_for_page(proc, url, t0, timeout, log_path)
        served = time.perf_counter() - t0
        info = json.loads(groups_file.read_text() or "{}")
        groups_file.unlink(missing_ok=True)
        return cls(
            proc, url, info.get("groups", {}), served, log_path, info.get("torch_threads", 0)
        )

    def rss_bytes(self) -> tuple[int, int]:
        """(current, peak) resident memory of the server process."""
        return proc_memory(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _wait_for_page(
    proc: subprocess.Popen, url: str, t0: float, timeout: float, log_path: Path
) -> None:
    """Poll ``GET url`` every 50 ms until it answers 200; raise if the app exits or times out."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"no page after {timeout:.0f} s; see {log_path}")
        time.sleep(0.05)


def proc_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes, from /proc (0, 0 where unavailable)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    return int(values.get("VmRSS", 0)) * 1024, int(values.get("VmHWM", 0)) * 1024


def endpoint_map(server: Server) -> dict[str, Endpoint]:
    return {e.name: e for e in harness.discover(server.url, server.groups)}


# --- the machine ---------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = (
            int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) * 1024
        )
    except (OSError, AttributeError):
        pass
    versions = {}
    for mod in ("torch", "transformers", "gradio", "gradio_client"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a report, not a requirement
            versions[mod] = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
    }


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")
