"""pnf: Preconditioners for the stochastic training of Neural Fields, reproduced.

Chng, Saratchandran, Lucey, "Preconditioners for the Stochastic Training of Neural
Fields", CVPR 2025 (arXiv 2402.08784).
"""

__version__ = "0.1.0"

# Bump when a change alters what a run computes: it is part of every cache key,
# so results computed by older code are never mistaken for current ones.
RESULTS_VERSION = 2
