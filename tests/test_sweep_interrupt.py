"""Ctrl-C stops a pool sweep within seconds: the queued runs are cancelled, the running ones
killed (the next sweep resumes them from their last checkpoint), the command says how many
finished and exits 130, no worker outlives it, and the next sweep computes the rest."""

import os
import re
import signal
import subprocess
import sys
import time

import psutil

SWEEP = [sys.executable, "-m", "pnf", "sweep", "tiny", "--family", "occupancy", "--executor", "pool"]  # 8 runs


def test_ctrl_c_stops_a_pool_sweep_within_seconds_and_the_next_sweep_computes_the_rest(tmp_path):
    cache, data = tmp_path / "cache", tmp_path / "data"
    data.mkdir()  # empty: the embedded data, nothing fetched
    env = {**os.environ, "PNF_CACHE": str(cache), "PNF_DATA": str(data), "PNF_WORKERS": "2",
           "PNF_CHECKPOINT_EVERY": "1"}
    sweep = subprocess.Popen(SWEEP, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(cache.glob("*/result.json")):
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
        time.sleep(0.05)
    children = psutil.Process(sweep.pid).children(recursive=True)  # the forkserver, its workers
    assert children, "the sweep started no worker"
    os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C sends: every process of the terminal's foreground group
    signalled = time.monotonic()
    _, err = sweep.communicate(timeout=60)
    assert time.monotonic() - signalled < 10, err
    assert sweep.returncode == 130, err
    said = re.search(r"interrupted: (\d+) of (\d+) runs finished .*; the other (\d+) run on the next sweep", err)
    assert said, err
    finished, total, rest = map(int, said.groups())
    assert 1 <= finished < total and finished + rest == total, err
    assert len(list(cache.glob("*/result.json"))) == finished
    assert "Traceback" not in err and "leaked semaphore" not in err, err  # killed workers leave nothing to clean up
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    again = subprocess.run(SWEEP, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{total} runs in {cache}" in again.stdout
    assert len(list(cache.glob("*/result.json"))) == total
    assert not list(cache.glob(".partial/*/epoch-*"))  # every interrupted run resumed and finished
