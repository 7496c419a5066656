"""`prefmill serve`: the config's schedules become Prefect deployments of the curate flow. A real
Prefect server on 127.0.0.1, with its scheduler running, fires a cron schedule; the served run
expands the input glob, curates, and commits a version whose flow run belongs to the deployment."""
import json
import os
import socket
import subprocess
import time
import urllib.request

from cli_helpers import PREFMILL, run
from flows.local_server import prefect_server
from rated_files import lamp_as_ultrafeedback, write

SCHEDULE = "* * * * *"   # every minute: the shortest cron


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{url}{path}", timeout=10) as response:
        return json.loads(response.read())


def test_a_cron_schedule_fires_and_commits_a_version(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "day1.jsonl", [json.dumps(r) for r in lamp_as_ultrafeedback()[:60]])
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"""schedules:
  - name: lamp-every-minute
    cron: "{SCHEDULE}"
    dataset: lamp
    inputs: ["{logs}/*.jsonl"]
dashboard: {{enabled: false}}
""")
    ws, home = tmp_path / "ws", tmp_path / "prefect-home"
    manifest_path = ws / "datasets" / "lamp" / "v1" / "manifest.json"
    with prefect_server(home, free_port(), services=True,
                        env={"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"}) as url:
        env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_HOME": str(home), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
        served = subprocess.Popen([PREFMILL, "serve", "-c", str(cfg), "-w", str(ws)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 240   # the next minute boundary, then the run itself
            while not manifest_path.exists() and time.monotonic() < deadline and served.poll() is None:
                time.sleep(2)
            flow_run = None
            while manifest_path.exists() and time.monotonic() < deadline and served.poll() is None:
                # the version is committed before the run ends (it still publishes): wait for its final state
                flow_run = api(url, f"/flow_runs/{json.loads(manifest_path.read_text())['flow_run_id']}")
                if flow_run["state"]["type"] not in ("SCHEDULED", "PENDING", "RUNNING"):
                    break
                time.sleep(0.5)
        finally:
            served.terminate()
            output = served.communicate(timeout=60)[0]
        assert manifest_path.exists() and flow_run, output[-3000:]
        manifest = json.loads(manifest_path.read_text())
        deployment = api(url, f"/deployments/{flow_run['deployment_id']}")
    assert deployment["name"] == "lamp-every-minute"
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == [SCHEDULE]
    assert flow_run["state"]["type"] == "COMPLETED" and flow_run["parameters"]["dataset"] == "lamp"
    assert manifest["inputs"][0]["path"] == str(logs / "day1.jsonl")  # the glob, expanded when the run started
    assert manifest["ledger"]["inputs"] == sum(len(r["completions"]) for r in lamp_as_ultrafeedback()[:60])
    assert manifest["ledger"]["pairs"] > 0 and "schedules" not in manifest["config"]


def test_serve_refuses_without_a_server_or_schedules(tmp_path):
    cfg = tmp_path / "serve.yaml"
    cfg.write_text('schedules: [{name: bad, cron: "61 * * * *", dataset: d, inputs: [x.jsonl]}]\n')
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    no_server = run("serve", "-c", str(cfg), check=False, env=env)
    assert no_server.returncode == 2 and "PREFECT_API_URL" in no_server.stderr
    with_server = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never contacted: the config is refused first
    bad_cron = run("serve", "-c", str(cfg), check=False, env=with_server)
    assert bad_cron.returncode == 2 and "schedule 'bad'" in bad_cron.stderr
    cfg.write_text("dashboard: {enabled: false}\n")
    none = run("serve", "-c", str(cfg), check=False, env=with_server)
    assert none.returncode == 2 and "no `schedules`" in none.stderr
