"""The image-set study: how often does the paper's ESGD-vs-Adam ordering hold across
images and seeds, and how does it fail when it does not?

Every (image, seed) pair is fitted by each optimizer with the paper's hyperparameters at
the image task's resolution and batch. A pair *holds* at an epoch when the paper's winner
for that field (`pnf.paper.IMAGE_FINAL_MSE["winner"]`) has the higher whole-image PSNR
there (a diverged run loses). ESGD's failures are sorted into one kind each:
- *divergence*: a non-finite loss (with its step);
- *stall*: ESGD gains less than `STALL_DB` between epoch `stall_from` and its last epoch
  while ending more than `TRAIL_DB` below Adam;
- *ordering lost*: neither, but the paper's ordering does not hold at the last epoch.
"""

from dataclasses import dataclass, replace

import numpy as np

from pnf.data.sources import data_dir, names, present, resolve
from pnf.optim.esgd_variants import RECOMMENDED
from pnf.paper import IMAGE_FINAL_MSE
from pnf.runs.cache import Result
from pnf.runs.executors import run_all
from pnf.studies.study import Study, register
from pnf.tasks.image import IMAGE

FIELDS = ("gaussian", "sine", "wavelet", "relu")
STALL_DB = 3.0  # dB gained from epoch `stall_from` to the end, below which a trailing run stalls
TRAIL_DB = 1.0  # dB behind Adam at the end, beyond which a slow ESGD run counts as trailing
PHOTOS = ("skimage:astronaut", "skimage:chelsea", "skimage:coffee", "skimage:rocket")


@dataclass(frozen=True)
class StudySettings:
    """`images` (sources; DIV2K ones count only when their files are present), `seeds`
    per image, `epochs` per run evaluated every `eval_every`, `epochs_at` where the
    orderings are counted, and the `optimizers` compared."""

    images: tuple
    seeds: int
    epochs: int
    epochs_at: tuple
    eval_every: int = 1
    optimizers: tuple = ("adam", "esgd", RECOMMENDED)

    @property
    def stall_from(self) -> int:
        return max(1, self.epochs // 4)


DIV2K = tuple(name for name in names("image") if name.startswith("div2k:test:"))
SETTINGS = {
    "paper": StudySettings(DIV2K + PHOTOS, seeds=3, epochs=200, epochs_at=(10, 20, 50, 200), eval_every=5),
    # ESGD and Adam only, evaluated every 5 epochs (a whole-image evaluation costs a third
    # of an epoch): the cpu profile's budget
    "cpu": StudySettings(DIV2K + PHOTOS, seeds=1, epochs=20, epochs_at=(10, 20), eval_every=5,
                         optimizers=("adam", "esgd")),
    # three photographs (the astronaut's runs are the image family's seed 0), ESGD and Adam,
    # 10 epochs as the image family at quick: the 12-minute budget of `make figures`
    "quick": StudySettings(PHOTOS[:3], seeds=1, epochs=10, epochs_at=(5, 10), optimizers=("adam", "esgd")),
    "tiny": StudySettings(PHOTOS[:2], seeds=1, epochs=2, epochs_at=(1, 2)),
}


def available(images: tuple) -> list[str]:
    """The study's images whose data can be loaded here."""
    return [name for name in images if present(resolve(name, "image"), data_dir())]


def study_configs(profile: str, settings: StudySettings) -> list:
    """Every run of the study: fields × optimizers × seeds × available images, at the image
    task's resolution and batch of `profile` with the study's epochs."""
    task_settings = replace(IMAGE.settings_for(profile), epochs=settings.epochs, seeds=settings.seeds,
                            eval_every=settings.eval_every)
    return [config for image in available(settings.images)
            for config in IMAGE.configs(task_settings, image, list(FIELDS), list(settings.optimizers))]


def run_study(profile: str, settings: StudySettings) -> list[Result]:
    return run_all(study_configs(profile, settings))


def psnr_at(result: Result, epoch: int) -> float:
    """Whole-image PSNR at `epoch`; -inf when the run diverged before it."""
    if result.status != "ok" and epoch not in result.history.get("eval_epoch", []):
        return -np.inf
    return result.at_epoch("psnr", epoch)


def pairs(results: list[Result], optimizer: str = "esgd", baseline: str = "adam") -> list[dict]:
    """One record per (field, image, seed) with both runs: `challenger` and `baseline`."""
    by_key = {(r.config.activation, r.config.data, r.config.seed, r.config.optimizer): r for r in results}
    return [{"field": f, "image": d, "seed": s, "challenger": r, "baseline": by_key[f, d, s, baseline]}
            for (f, d, s, o), r in by_key.items() if o == optimizer and (f, d, s, baseline) in by_key]


def holds(pair: dict, epoch: int) -> bool:
    """Whether the paper's ordering of ESGD and Adam for the pair's field holds at `epoch`
    (the challenger stands in for ESGD)."""
    challenger, baseline = psnr_at(pair["challenger"], epoch), psnr_at(pair["baseline"], epoch)
    esgd_wins = IMAGE_FINAL_MSE["winner"][pair["field"]] == "esgd"
    return challenger > baseline if esgd_wins else baseline > challenger


def failure(pair: dict, settings: StudySettings) -> tuple[str, str] | None:
    """(kind, detail) of the challenger's failure on `pair`, or None (see the module docstring)."""
    run, last = pair["challenger"], settings.epochs
    if run.status != "ok":
        return "divergence", f"non-finite loss at step {run.diverged_step}"
    gained = psnr_at(run, last) - psnr_at(run, settings.stall_from)
    behind = psnr_at(pair["baseline"], last) - psnr_at(run, last)
    if gained < STALL_DB and behind > TRAIL_DB:
        return "stall", f"+{gained:.1f} dB from epoch {settings.stall_from} to {last}, {behind:.1f} dB behind Adam"
    if not holds(pair, last):
        return "ordering lost", f"PSNR gap {-behind:+.1f} dB at epoch {last}"
    return None


def share_table(records: list[dict], epochs_at: tuple, last: int) -> dict:
    """Per field: {epoch: (pairs holding, pairs)} for each epoch of `epochs_at` up to `last`."""
    table = {}
    for field in FIELDS:
        mine = [p for p in records if p["field"] == field]
        table[field] = {e: (sum(holds(p, e) for p in mine), len(mine)) for e in epochs_at if e <= last}
    return table


def gaps(records: list[dict], epoch: int) -> dict[str, np.ndarray]:
    """Per field: the PSNR gaps challenger − baseline (dB) at `epoch` over the pairs that
    both finished."""
    out = {}
    for field in FIELDS:
        values = [psnr_at(p["challenger"], epoch) - psnr_at(p["baseline"], epoch) for p in records
                  if p["field"] == field]
        out[field] = np.asarray([v for v in values if np.isfinite(v)])
    return out


register(Study("robustness", "image", lambda profile: study_configs(profile, SETTINGS[profile])))
