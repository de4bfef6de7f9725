"""Image metrics, through scikit-image."""

import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio


def mse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over all elements."""
    return float(mean_squared_error(target, prediction))


def psnr(prediction: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, `10 log10(range² / MSE)`; inf for identical arrays."""
    if np.array_equal(prediction, target):
        return float("inf")
    return float(peak_signal_noise_ratio(target, prediction, data_range=data_range))
