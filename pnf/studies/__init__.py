"""Studies beyond the paper's figures, each one module named like its notebook:
`curvature` (curvature.ipynb), `esgd_failures` (image_esgd_failures.ipynb), `robustness`
(image_robustness.ipynb) and `beyond_paper` (image_beyond_paper.ipynb); their views are
`pnf.report.<study>_views`."""
