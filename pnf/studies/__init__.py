"""Studies beyond the paper's figures, each one module named like its notebook:
`curvature` (curvature.ipynb), `esgd_failures` (image_esgd_failures.ipynb), `robustness`
(image_robustness.ipynb) and `beyond_paper` (image_beyond_paper.ipynb); their views are
`pnf.report.<study>_views`. Those that train runs register them (`pnf.studies.study`).
A new study is its module, one import line here, its notebook and its views.
"""

from pnf.studies import beyond_paper, curvature, esgd_failures, robustness  # noqa: F401  (the first and last register)
from pnf.studies.study import STUDIES, Study, register, study_configs

__all__ = ["STUDIES", "Study", "register", "study_configs"]
