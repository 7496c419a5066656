"""Run the real `prefmill` command in a subprocess, as a user would."""
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, SAMPLES

PREFMILL = str(Path(sys.executable).parent / "prefmill")
ALL_SAMPLES = sorted(str(p) for p in SAMPLES.iterdir() if p.suffix in (".jsonl", ".gz"))


def run(*args, check=True, env=None):
    proc = subprocess.run([PREFMILL, *args], capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"prefmill {args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def last_json(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])
