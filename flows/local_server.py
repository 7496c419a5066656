"""A real Prefect server on 127.0.0.1 in a child process, with its own PREFECT_HOME: what the
tests and benchmarks point PREFECT_API_URL at (production points it at its own server or Cloud)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def prefect_server(home: Path, port: int = 4299, services: bool = False, env: dict | None = None):
    """Yields the API URL. Without `services` the server only records runs (fastest to start);
    with them its scheduler creates the runs of deployment schedules."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", **(env or {})}
    env.pop("PREFECT_API_URL", None)
    args = ["server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), *args, *([] if services else ["--no-services"])],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                raise RuntimeError(f"the Prefect server exited with {proc.returncode} (port {port} in use?)")
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the Prefect server did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
