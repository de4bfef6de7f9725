"""Adding a task or a study is its own module and its registration, nothing listed by hand:
the sweep (`make runs`), the estimate and `make bench` collect their runs from the registries."""

from dataclasses import replace

import pytest

from pnf import __main__ as cli
from pnf import estimate
from pnf.runs.cache import is_cached
from pnf.studies import STUDIES, Study
from pnf.tasks import TASKS
from pnf.tasks.image import IMAGE


@pytest.fixture
def toys(monkeypatch, tmp_path):
    """A toy task (the image task's builder under another name, its own grid) and a toy study of
    it, registered for this test only."""
    toy = replace(IMAGE, name="toy", grid=lambda task, settings, source: task.configs(
        settings, source, ["sine"], ["adam"]))
    monkeypatch.setitem(TASKS, "toy", toy)

    def study_runs(profile: str) -> list:
        settings = replace(toy.settings_for(profile), epochs=2)
        return toy.configs(settings, toy.default_source(), ["gaussian"], ["esgd"])

    monkeypatch.setitem(STUDIES, "toy_study", Study("toy_study", "toy", study_runs))
    monkeypatch.setenv("PNF_CACHE", str(tmp_path / "cache"))
    return toy


def test_a_new_task_and_study_are_swept_and_priced_without_being_listed(toys, capsys):
    planned = estimate.configs("tiny", ["toy"])
    assert sorted((c.task, c.activation, c.optimizer, c.epochs) for c in planned) == [
        ("toy", "gaussian", "esgd", 2), ("toy", "sine", "adam", IMAGE.settings_for("tiny").epochs)]
    seconds, missing, total = estimate.estimate("tiny", price=lambda *pair: 1e-3, tasks=["toy"])
    assert (missing, total) == (2, 2) and seconds > 0
    assert cli.main(["sweep", "tiny", "--family", "toy", "--executor", "inline"]) == 0
    assert all(is_cached(config) for config in planned)
    assert "2 runs in" in capsys.readouterr().out
    assert not any(c.task == "toy" for c in estimate.configs("tiny", ["image"]))  # only its own family's sweep


def test_every_registered_task_prices_its_runs():
    """A task without a cost is a TypeError when it is made, not a KeyError in `make runs`."""
    with pytest.raises(TypeError, match="cost"):
        type(IMAGE)("untitled", IMAGE.build, IMAGE.settings, "image", IMAGE.grid)
    for profile in ("tiny", "quick", "cpu", "paper"):
        assert all(estimate.reference_steps(config) > 0 for config in estimate.configs(profile))
