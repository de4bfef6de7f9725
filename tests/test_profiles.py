"""Every profile has a section in every place that keeps one, and the reduced profiles
differ from the paper's only where their comments say."""

import pytest

from pathlib import Path

from pnf.profile_table import SECTIONS, markdown
from pnf.profiles import PROFILES, check_profile
from pnf.studies import robustness
from pnf.tasks import TASKS

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_section_defines_every_profile(section):
    assert set(SECTIONS[section]) == set(PROFILES)


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown profile 'fast'; one of paper, quick, cpu, tiny"):
        check_profile("fast")


def test_reduced_image_profiles_keep_the_papers_resolution_and_batch():
    paper = TASKS["image"].settings_for("paper")
    for name in ("quick", "cpu"):
        settings = TASKS["image"].settings_for(name)
        assert (settings.resolution, settings.batch_size) == (paper.resolution, paper.batch_size)
        assert settings.seeds >= 3


def test_the_cpu_profile_reaches_every_point_the_paper_claims_at():
    image, occupancy, nerf = (TASKS[name].settings_for("cpu") for name in ("image", "occupancy", "nerf"))
    assert image.epochs == 200
    assert occupancy.epochs > 1000 and occupancy.batch_size >= 20000 and occupancy.resolution >= 64
    assert nerf.epochs * 100 >= 20000 and nerf.resolution >= 64
    assert robustness.SETTINGS["cpu"].epochs >= 20


def test_the_readme_shows_the_profile_table_the_code_gives():
    text = README.read_text(encoding="utf-8")
    shown = text.split("<!-- profile table: begin -->\n")[1].split("<!-- profile table: end -->")[0]
    assert shown == markdown(), "run `python -m pnf.profile_table` and paste it into the README"
    assert "| task image | epochs | 200 | 200 | 10 | 2 |" in shown
