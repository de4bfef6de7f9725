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

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from pnf.config import RunConfig, check_name, env_int
from pnf.profiles import PROFILES, check_profile
from pnf.runs import Result, cache_dir, is_cached, run

EXECUTORS = ("inline", "pool", "local", "slurm")


@dataclass(frozen=True)
class SlurmSettings:
    """Resources of one run as a SLURM job."""

    partition: str = "gpu"
    gpus: int = 1
    cpus: int = 4
    time_min: int = 24 * 60
    parallel_jobs: int = 64  # array jobs at once


SLURM = {name: SlurmSettings() for name in PROFILES}  # one job's resources, the same at every profile


def run_all(configs: list[RunConfig], progress: bool = True) -> list[Result]:
    """Results of all `configs`: the missing ones are computed by the executor that
    `PNF_EXECUTOR` names, then everything is read from the cache (diverged runs,
    never cached, come back as computed)."""
    pending = [config for config in configs if not is_cached(config)]
    fresh = execute(pending, progress=progress) if pending else {}
    return [fresh[c.key()] if c.key() in fresh and fresh[c.key()].status != "ok" else run(c) for c in configs]


def execute(configs: list[RunConfig], kind: str | None = None, progress: bool = True) -> dict[str, Result]:
    """Compute `configs` with executor `kind` (default `PNF_EXECUTOR`); results by config key."""
    kind = check_name("executor (PNF_EXECUTOR)", kind or os.environ.get("PNF_EXECUTOR") or "inline", EXECUTORS)
    bar = tqdm(total=len(configs), desc=f"runs ({kind})", disable=not progress, leave=False)
    if kind == "inline":
        results = []
        for config in configs:
            results.append(run(config, progress=progress))
            bar.update()
    elif kind == "pool":
        results = _pool(configs, bar)
    else:
        results = _submitit(configs, kind, bar)
    bar.close()
    return {result.config.key(): result for result in results}


def _quiet_run(config: RunConfig, threads: int | None = None) -> Result:
    if threads:
        torch.set_num_threads(threads)
    return run(config, progress=False)


def pool_workers() -> int:
    """Processes of the `pool` executor: `PNF_WORKERS`, default one per core."""
    return env_int("PNF_WORKERS", os.cpu_count() or 1)


def _pool(configs: list[RunConfig], bar) -> list[Result]:
    workers = pool_workers()
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_quiet_run, config, threads) for config in configs]
        results = []
        for future in as_completed(futures):
            results.append(future.result())
            bar.update()
    return results


def _submitit(configs: list[RunConfig], kind: str, bar) -> list[Result]:
    import submitit

    folder = cache_dir() / ".submitit" / "%j"
    if kind == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=60)
    else:
        slurm = SLURM[check_profile(os.environ.get("PNF_PROFILE", "paper"))]
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        executor.update_parameters(
            slurm_partition=os.environ.get("PNF_SLURM_PARTITION", slurm.partition),
            gpus_per_node=slurm.gpus, cpus_per_task=slurm.cpus, timeout_min=slurm.time_min,
            slurm_array_parallelism=slurm.parallel_jobs, name="pnf",
        )
    jobs = executor.map_array(_quiet_run, configs)
    results = []
    for job in jobs:
        results.append(job.result())
        bar.update()
    return results
