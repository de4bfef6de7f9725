"""Optimizers by name, each registered by its own module with its preset beside it.

The import order below is the order in which reports list them. A new optimizer is a
module that calls `pnf.optim.registry.register` and one import line here.
"""

from pnf.optim import baselines  # noqa: F401  (adam, sgd)
from pnf.optim.esgd import ESGD
from pnf.optim.adahessian import AdaHessian
from pnf.optim.kfac import KFACAdam
from pnf.optim.shampoo import Shampoo
from pnf.optim import esgd_variants  # noqa: F401  (esgd_refreshes, esgd_primed)
from pnf.optim import muon  # noqa: F401
from pnf.optim import soap  # noqa: F401
from pnf.optim import kron  # noqa: F401
from pnf.optim import sophia  # noqa: F401
from pnf.optim import lbfgs  # noqa: F401
from pnf.optim.registry import OPTIMIZERS, OptimizerSpec, make_optimizer

__all__ = ["ESGD", "OPTIMIZERS", "AdaHessian", "KFACAdam", "OptimizerSpec", "Shampoo", "make_optimizer"]
