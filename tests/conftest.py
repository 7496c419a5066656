import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"

# Prefect in ephemeral mode, quiet, private; models never downloaded.
for key, value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                   "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", "HF_HUB_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES
