"""Optimizers by name, each registered by its own module with its preset beside it.

The import order below is the order in which reports list them. A new optimizer is a
module that calls `pnf.optim.registry.register` and its name in the import below.
"""

from pnf.optim import (  # noqa: F401  (each module registers its optimizers, in this order)
    baselines, esgd, adahessian, kfac, shampoo, esgd_variants, muon, soap, kron, sophia, lbfgs,
)
from pnf.optim.adahessian import AdaHessian
from pnf.optim.esgd import ESGD
from pnf.optim.kfac import KFACAdam
from pnf.optim.registry import OPTIMIZERS, OptimizerSpec, make_optimizer
from pnf.optim.shampoo import Shampoo

__all__ = ["ESGD", "OPTIMIZERS", "AdaHessian", "KFACAdam", "OptimizerSpec", "Shampoo", "make_optimizer"]
