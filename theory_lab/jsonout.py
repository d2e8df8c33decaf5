"""Strict JSON: plain types only, every non-finite number as None (JSON has no NaN or inf)."""
from __future__ import annotations

import math

import numpy as np


def strict(value):
    """Plain JSON types, non-finite floats as None, recursively."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value if value is None or isinstance(value, str) else str(value)
