"""Tasks: what a field is fitted to, one registered record each (`pnf.tasks.records`).

A new task is one module that registers its `Task`, one import line here, and its
report notebooks `notebooks/<task>_*.ipynb`.
"""

from pnf.tasks import image, nerf, occupancy, sdf  # noqa: F401  (each registers itself)
from pnf.tasks.records import TASKS, Settings, Task, get_task, grid, make_task

__all__ = ["TASKS", "Settings", "Task", "get_task", "grid", "make_task"]
