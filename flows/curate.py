"""The `curate` Prefect flow. When every input is a rated file (and no recipe or model annotator
is set) the run is streamed block by block in bounded memory (flows/streamed.py); otherwise the
inputs are read whole and mined, paired and filtered in memory (flows/in_memory.py). Both commit
one version, resume a killed run from its staging folder, and can build on the latest version
(`incremental`). Thin by rule: the work lives in pipeline/ stages."""
from __future__ import annotations

from pathlib import Path

from flows.in_memory import curate_in_memory
from flows.plain_flow import plain_flow
from flows.publish import NoUsableInput
from flows.streamed import curate_streamed
from pipeline.config import CurateConfig
from pipeline.sources import NoMatch, expand_inputs
from pipeline.streamed import streamable


@plain_flow(name="curate")
def curate(inputs: list[str], dataset: str, workspace: str, config: dict | None = None,
           incremental: bool = False, dask_address: str | None = None) -> dict:
    """Curate `inputs` into a new version of `dataset` under `workspace`; returns its manifest.
    `incremental`: build on the latest version, reading only what it has not seen.
    `dask_address`: a Dask scheduler whose workers compute the blocks of a streamed run, or mine
    the tables of an in-memory one."""
    cfg = CurateConfig.model_validate(config or {})
    ws = Path(workspace)
    try:
        inputs = expand_inputs(inputs)
    except NoMatch as exc:
        raise NoUsableInput(str(exc)) from exc
    if streamable(inputs, cfg):
        return curate_streamed(inputs, dataset, ws, cfg, incremental, dask_address)
    return curate_in_memory(inputs, dataset, ws, cfg, incremental, dask_address)
