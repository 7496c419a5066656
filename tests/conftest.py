import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"

# Prefect in ephemeral mode, quiet, private; models never downloaded.
for key, value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                   "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", "HF_HUB_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
                   "VLLM_LOGGING_LEVEL": "ERROR", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def curated(tmp_path_factory):
    """All shared samples curated twice into one workspace (v1, v2) by the real `prefmill curate`:
    with the default config, then mined in batches of 100 records (the same run with the same config
    would return v1). Shared by the session: tests must not change these versions."""
    from cli_helpers import ALL_SAMPLES, last_json, run

    ws = tmp_path_factory.mktemp("ws")
    first = last_json(run("curate", *ALL_SAMPLES, "--dataset", "samples", "--workspace", str(ws), "--json"))
    batches = ws / "batches.yaml"
    batches.write_text("batch_size: 100\n")
    second = last_json(run("curate", *ALL_SAMPLES, "--dataset", "samples", "--workspace", str(ws), "--json",
                           "--config", str(batches)))
    return ws, first, second


# One engine of each kind per test session: a vLLM engine takes ~20 s to start on CPU.
@pytest.fixture(scope="session")
def model_ref():
    from pipeline.models import resolve

    return resolve()  # the bundled SmolLM2-135M-Instruct, prepared once per machine


@pytest.fixture(scope="session")
def vllm_runner(model_ref):
    from pipeline.models import ModelRunner

    runner = ModelRunner(backend="vllm", max_model_len=2048)
    runner.backend  # start the engine now
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def hf_runner(model_ref):
    from pipeline.models import ModelRunner

    runner = ModelRunner(backend="transformers", max_model_len=2048)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def vllm_server(model_ref, tmp_path_factory):
    """A real `vllm serve` on 127.0.0.1, started by the test session itself."""
    from tests.vllm_server import serve

    with serve(model_ref.path, tmp_path_factory.mktemp("vllm-serve")) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def openai_runner(vllm_server):
    from pipeline.models import ModelRunner

    runner = ModelRunner(backend="openai", max_model_len=2048, base_url=vllm_server)
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def recipe_runners(vllm_runner):
    """The session's vLLM engine as the `default` endpoint of a recipe run (Runners.get serves it)."""
    from pipeline.annotate.registry import Runners
    from pipeline.config_annotate import ModelEndpoint

    runners = Runners({"default": ModelEndpoint(max_model_len=2048)}, None)
    runners.open["default"] = vllm_runner
    return runners


@pytest.fixture
def reliability(request):
    """record(check, tried, cases, handled, rows_lost=0): a row of RELIABILITY.md (tests/reliability.py)."""
    import reliability as report

    return report.recorder(request.node.nodeid)


def pytest_runtest_logreport(report):
    if report.when == "call":
        import reliability

        reliability.test_finished(report.nodeid, report.passed)


def pytest_sessionfinish(session):
    import reliability

    reliability.write()
