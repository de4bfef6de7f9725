"""Nothing one computation leaves in its process changes another's numbers: a report
rendered after one that pollutes its process records the claims it records alone, and a
run in a pool worker (a forkserver child) equals the same run inline."""

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import torch

from pnf.checks import ConfigError
from pnf.render import main
from pnf.runs.cache import is_cached
from pnf.runs.executors import execute
from pnf.tasks import grid

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "notebooks" / "image_fig1a.ipynb"  # four tiny runs; records one claim
POLLUTE = """import os, matplotlib, numpy as np, torch
torch.set_default_dtype(torch.float64)
os.environ["PNF_DATA"] = "/nonexistent-pnf-data"
matplotlib.rcParams["lines.linewidth"] = 7.0
np.random.seed(0)"""


def render(notebooks: list[Path], site: Path, monkeypatch) -> dict:
    """The claims that `notebooks`, rendered one after another at the tiny profile with a
    cache of their own, record in `site`/claims, by claim."""
    monkeypatch.setenv("PNF_CACHE", str(site / "cache"))
    monkeypatch.setenv("PNF_REPORTS", str(site))
    assert main([*map(str, notebooks), "--out", str(site), "--profile", "tiny", "--jobs", "1"]) == 0
    return {path.stem: json.loads(path.read_text()) for path in (site / "claims").glob("*.json")}


def test_a_report_after_one_that_pollutes_its_process_records_what_it_records_alone(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("PNF_DATA", str(tmp_path / "data"))  # empty: the embedded image, nothing fetched
    monkeypatch.setenv("PNF_EXECUTOR", "inline")  # trained in the report's kernel, where the pollution would be
    polluter = tmp_path / "polluter.ipynb"
    parameters = nbformat.v4.new_code_cell('profile = "quick"')
    parameters.metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(POLLUTE)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), polluter)
    alone = render([REPORT], tmp_path / "alone", monkeypatch)
    after = render([polluter, REPORT], tmp_path / "after", monkeypatch)
    assert list(alone) == ["fig1-wavelet-psnr-epoch10"]
    assert after == alone
    assert 0 < alone["fig1-wavelet-psnr-epoch10"]["values"]["esgd"][0] < 60  # a PSNR in dB


def tiny_run(**changes):
    config = [c for c in grid("tiny", ["image"]) if c.activation == "sine" and c.optimizer == "esgd"][0]
    return replace(config, **changes)


def test_a_pool_worker_runs_in_this_process_s_threads_and_environment_and_equals_an_inline_run(
        tmp_path, monkeypatch):
    monkeypatch.setenv("PNF_WORKERS", "1")  # one worker: this process's one thread
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what a new process would take
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "pool"))
    config = tiny_run()
    pooled = execute([config], kind="pool", progress=False)[config.key()]
    assert pooled.provenance["device"].endswith("CPU, 1 thread")
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "inline"))
    inline = execute([config], kind="inline", progress=False)[config.key()]
    for name in ("train_loss", "metrics"):  # bit for bit
        assert pooled.history[name] == inline.history[name]
    assert pooled.history["metrics"]["psnr"][-1] > 5
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "later"))  # changed after the workers' server started
    other = tiny_run(seed=1)
    execute([other], kind="pool", progress=False)
    assert (tmp_path / "later" / other.key() / "result.json").exists()
    assert not (tmp_path / "pool" / other.key()).exists()
    torch.set_default_dtype(torch.float64)  # a fresh worker would train in float32 and cache that, without a word
    try:
        with pytest.raises(ConfigError, match="default dtype is float64"):
            execute([tiny_run(seed=2)], kind="pool", progress=False)
    finally:
        torch.set_default_dtype(torch.float32)


def test_a_pool_worker_reads_the_data_folder_a_report_chose(tmp_path, monkeypatch):
    """`use_data_dir` (a report's `data_dir`) is not in the environment; the workers get it too,
    so they train on the same data and cache under the key this process looks up."""
    from pnf.data.sources import use_data_dir

    lion = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "div2k_subset" / "test_data"
    if not (lion / "image_014.jpg").exists():
        pytest.skip("the DIV2K lion is not in ../shared/data")
    chosen = tmp_path / "data" / "images" / "div2k_subset" / "test_data"
    chosen.mkdir(parents=True)
    (chosen / "image_014.jpg").write_bytes((lion / "image_014.jpg").read_bytes())
    monkeypatch.setenv("PNF_WORKERS", "1")
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PNF_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    use_data_dir(tmp_path / "data")
    try:
        config = tiny_run(data="div2k:test:14")
        execute([config], kind="pool", progress=False)
        assert is_cached(config)  # the worker read the lion, not the embedded stand-in
    finally:
        use_data_dir(None)
