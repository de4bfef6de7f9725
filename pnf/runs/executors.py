"""Where missing runs are computed, chosen by configuration, never by a notebook.

`PNF_EXECUTOR` (the Makefile's `EXECUTOR`) names one of:
- `inline` (default): one after the other, in this process;
- `pool` (the Makefile's default): a local process pool of `PNF_WORKERS` processes
  (default: one per core), each with its share of the cores' threads (one by default),
  so processes side by side never oversubscribe;
- `slurm`: a SLURM job array through submitit, with the `slurm` section of the profile
  (`PNF_PROFILE`) for partition, GPUs, CPUs and time; `PNF_SLURM_PARTITION` overrides
  the partition. The cache (`PNF_CACHE`) must be on a filesystem the nodes share.
- `local`: submitit's local executor: the same code path as `slurm`, without a cluster.

Every executor leaves its results in the shared cache; `run_all` then only loads.
"""

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial

import torch
from tqdm.auto import tqdm

from pnf.checks import check_name, env_int
from pnf.config import RunConfig
from pnf.data.sources import data_dir, use_data_dir
from pnf.profiles import PROFILES, check_profile
from pnf.runs.cache import Result, cache_dir, is_cached, run

EXECUTORS = ("inline", "pool", "local", "slurm")

# One run's resources as a SLURM job, the same at every profile (`parallel_jobs`: array jobs at once).
SLURM = {name: {"partition": "gpu", "gpus": 1, "cpus": 4, "time_min": 24 * 60, "parallel_jobs": 64}
         for name in PROFILES}


def run_all(configs: list[RunConfig], progress: bool = True) -> list[Result]:
    """Results of all `configs`: the missing ones are computed by the executor that
    `PNF_EXECUTOR` names, then everything is read from the cache."""
    pending = [config for config in configs if not is_cached(config)]
    if pending:
        execute(pending, progress=progress)
    return [run(c) for c in configs]


def execute(configs: list[RunConfig], kind: str | None = None, progress: bool = True) -> dict[str, Result]:
    """Compute `configs` with executor `kind` (default `PNF_EXECUTOR`); results by config key."""
    kind = check_name("executor (PNF_EXECUTOR)", kind or os.environ.get("PNF_EXECUTOR") or "inline", EXECUTORS)
    if kind == "inline":
        results = (run(config, progress=progress) for config in configs)
    elif kind == "pool":
        results = _pool(configs)
    else:
        results = _submitit(configs, kind)
    results = tqdm(results, total=len(configs), desc=f"runs ({kind})", disable=not progress, leave=False)
    return {result.config.key(): result for result in results}


def _quiet_run(config: RunConfig, threads: int | None = None, environ: dict | None = None,
               default_dtype: torch.dtype | None = None, data_folder: str | None = None) -> Result:
    """`run(config)` without a progress bar, in a worker that adopts the submitting process's
    torch `threads`, environment `environ`, `default_dtype` and data folder (a report's
    `data_dir`, which is not in the environment) (each: when given)."""
    if threads:
        torch.set_num_threads(threads)
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    if default_dtype is not None:
        torch.set_default_dtype(default_dtype)
    use_data_dir(data_folder)
    return run(config, progress=False)


def _start_worker() -> None:
    """A pool worker leaves Ctrl-C to the process that submitted its runs (`_pool` kills it),
    and its progress bars (none are shown) lock with a thread lock, not a named semaphore
    that a killed worker would leave behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(threading.RLock())


def pool_workers() -> int:
    """Processes of the `pool` executor: `PNF_WORKERS`, default one per core."""
    return env_int("PNF_WORKERS", os.cpu_count() or 1)


def _pool(configs: list[RunConfig]):
    """The results of a local process pool, as they finish. Workers start from a forkserver
    (a fork would inherit a CUDA context this process may hold, which CUDA refuses), share
    this process's torch threads (one each when there are as many workers as threads) and
    run in its environment and default dtype. On an interrupt (Ctrl-C) the queued runs are
    cancelled and the running ones killed: they resume from their last checkpoint."""
    workers = pool_workers()
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "pnf.runs.cache"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker)
    try:
        futures = [pool.submit(_quiet_run, config, threads, dict(os.environ), torch.get_default_dtype(),
                               str(data_dir())) for config in configs]
        for future in as_completed(futures):
            yield future.result()
    except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C, or the results no longer wanted
        for process in list(pool._processes.values()):  # Python 3.14 has pool.kill_workers()
            process.kill()
        raise
    finally:  # after an error too, no queued run starts
        pool.shutdown(cancel_futures=True)


def _submitit(configs: list[RunConfig], kind: str):
    """The results of submitit's local executor or of a SLURM job array, in order."""
    import submitit  # only the local and slurm executors need it

    folder = cache_dir() / ".submitit" / "%j"
    if kind == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=60)
    else:
        slurm = SLURM[check_profile(os.environ.get("PNF_PROFILE", "paper"))]
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(
            slurm_partition=os.environ.get("PNF_SLURM_PARTITION", slurm["partition"]),
            gpus_per_node=slurm["gpus"], cpus_per_task=slurm["cpus"], timeout_min=slurm["time_min"],
            slurm_array_parallelism=slurm["parallel_jobs"], name="pnf",
        )
    jobs = executor.map_array(partial(_quiet_run, data_folder=str(data_dir())), configs)
    return (job.result() for job in jobs)
