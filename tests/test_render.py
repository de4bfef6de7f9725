"""pnf.render: reports executed in reused kernels, each from a clean namespace; only stale ones."""

import os
import time

import nbformat
import pytest

from pnf.render import main


def notebook(folder, name, *sources):
    """A notebook `name`.ipynb in `folder`: a tagged parameters cell, then one code cell per source."""
    parameters = nbformat.v4.new_code_cell('profile = "quick"')
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters, *(nbformat.v4.new_code_cell(source) for source in sources)]
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def outputs(executed):
    return "".join(output.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                   for output in cell.get("outputs", []))


def test_one_kernel_renders_reports_one_after_another_from_a_clean_namespace(tmp_path, capsys):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    first = notebook(folder, "first", "leaked = 1\nimport matplotlib.pyplot as plt\nplt.figure()\nprint(profile)")
    second = notebook(folder, "second", "import os, matplotlib.pyplot as plt\n"
                                        "print('leaked' in globals(), len(plt.get_fignums()), os.getcwd(), profile)")
    assert main([str(first), str(second), "--out", str(out), "--profile", "tiny", "--jobs", "1"]) == 0
    assert outputs(out / "first.ipynb") == "tiny\n"  # the parameter injected
    assert outputs(out / "second.ipynb") == f"False 0 {folder} tiny\n"
    page = (out / "second.html").read_text()
    assert "highlight hl-ipython3" not in page and "cdnjs" not in page  # code hidden, nothing from CDNs
    assert "[2/2] second: rendered" in capsys.readouterr().out


def test_only_stale_reports_are_rendered_and_a_failure_leaves_no_html(tmp_path, capsys):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    fine, broken = notebook(folder, "fine", "print(1)"), notebook(folder, "broken", "ratio = 1 / 0")
    dependency = tmp_path / "code.py"
    dependency.write_text("")
    arguments = ["--out", str(out), "--profile", "tiny", "--jobs", "2", "--depends-on", str(dependency), "--"]
    assert main([*arguments, str(fine)]) == 0
    rendered = (out / "fine.html").stat().st_mtime
    (out / "broken.html").write_text("stale")
    os.utime(out / "broken.html", (0, 0))  # older than its notebook
    assert main([*arguments, str(fine), str(broken)]) == 1
    captured = capsys.readouterr()
    assert "rendering 1 report(s)" in captured.out and "ZeroDivisionError" in captured.err
    assert not (out / "broken.html").exists() and (out / "broken.ipynb").exists()  # the error is kept there
    assert (out / "fine.html").stat().st_mtime == rendered  # up to date: not rendered again
    time.sleep(0.01)
    os.utime(dependency)  # a dependency changed: every report is stale again
    assert main([*arguments, str(fine)]) == 0
    assert (out / "fine.html").stat().st_mtime > rendered


@pytest.mark.parametrize("arguments, message", [
    (["--jobs", "0"], "--jobs 0: use a positive number of kernels"),
    (["--jobs", "two"], "argument --jobs: invalid int value: 'two'"),
    (["--depends-on", "absent.py", "--"], "no such file: absent.py"),
])
def test_bad_arguments_are_refused_naming_them_and_nothing_is_written(tmp_path, capsys, arguments, message):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    page = notebook(folder, "page", "print(1)")
    with pytest.raises(SystemExit) as exit:
        main(["--out", str(out), "--profile", "tiny", *arguments, str(page)])
    assert exit.value.code == 2 and message in capsys.readouterr().err and not out.exists()


def test_a_missing_notebook_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent.ipynb"), "--out", str(tmp_path / "reports"), "--profile", "tiny"])
    assert f"no such notebook: {tmp_path / 'absent.ipynb'}" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_the_longest_report_last_time_starts_first(tmp_path, capsys):
    folder, out = tmp_path / "notebooks", tmp_path / "reports"
    folder.mkdir()
    quick, slow = notebook(folder, "quick", "print(1)"), notebook(folder, "slow", "import time\ntime.sleep(0.5)")
    arguments = ["--out", str(out), "--profile", "tiny", "--jobs", "1", "--", str(quick), str(slow)]
    assert main(arguments) == 0
    for page in out.glob("*.html"):
        page.unlink()
    assert main(arguments) == 0
    assert capsys.readouterr().out.split("\n[1/2] ")[-1].startswith("slow: rendered")
