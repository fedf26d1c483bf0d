r"""Learning-rate schedules: warm-up, the original Transformer's ("Noam") schedule, linear decay.

Each is a ``torch.optim.lr_scheduler.LambdaLR`` to pass to :func:`attnlib.torch.train` as
``scheduler=`` (stepped once per training step), and :func:`noam_rate` is the formula itself.
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.checks import check_count, check_positive_count, check_real

__all__ = ["warmup_schedule", "noam_rate", "noam_schedule", "warmup_linear_decay"]


def warmup_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int):
    r"""A ``LambdaLR`` scheduler: the learning rate rises linearly to its set value over ``warmup_steps``.

    The factor at step :math:`s` (counting from 0) is :math:`\min(1, (s + 1) / \text{warmup})`;
    ``warmup_steps=0`` keeps the learning rate constant.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    warmup_steps : int

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
    """
    warmup_steps = check_count(warmup_steps, "warmup_steps")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 1.0 if warmup_steps == 0 else min(1.0, (s + 1) / warmup_steps))


def noam_rate(step, d_model: int, warmup_steps: int, factor: float = 1.0):
    r"""The learning rate of the original Transformer ("Noam") schedule at ``step`` (1-based).

    .. math:: \text{lr}(s) = f \cdot d_\text{model}^{-1/2}\, \min\big(s^{-1/2},\; s \cdot w^{-3/2}\big)

    It rises linearly for ``w = warmup_steps`` steps, peaks at :math:`f / \sqrt{d_\text{model} w}`
    and then decays like :math:`1/\sqrt{s}`.

    Parameters
    ----------
    step : int or numpy.ndarray of int
        Steps, counting from 1.
    d_model : int
    warmup_steps : int
    factor : float

    Returns
    -------
    float or numpy.ndarray of float
    """
    check_positive_count(d_model, "d_model")
    check_positive_count(warmup_steps, "warmup_steps")
    check_real(factor, "factor")
    try:
        s = np.asarray(step, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"step must be a step number or an array of them (counting from 1), got "
                         f"{type(step).__name__}") from None
    if not np.all(s >= 1):
        raise ValueError(f"step counts from 1, got {step!r}" if s.ndim == 0 else
                         f"step counts from 1, got a minimum of {s.min() if s.size else s}")
    out = factor * d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup_steps ** -1.5)
    return float(out) if out.ndim == 0 else out


def noam_schedule(optimizer: torch.optim.Optimizer, d_model: int, warmup_steps: int,
                  factor: float = 1.0):
    """A ``LambdaLR`` that sets the learning rate to :func:`noam_rate` (the optimizer's own lr is ignored).

    Step ``s`` of the scheduler (from 0) uses ``noam_rate(s + 1, ...)``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    d_model, warmup_steps : int
    factor : float

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
    """
    noam_rate(1, d_model, warmup_steps, factor)  # validates
    for group in optimizer.param_groups:
        group["lr"] = 1.0
        group["initial_lr"] = 1.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: noam_rate(s + 1, d_model, warmup_steps, factor))


def warmup_linear_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    r"""A ``LambdaLR``: linear warm-up to the optimizer's rate, then linear decay to 0 at ``total_steps``.

    The factor at scheduler step :math:`s` (from 0, the rate of update :math:`s + 1`) is
    :math:`\min\big((s + 1) / w,\; (T - s) / (T - w)\big)` with :math:`w` = ``warmup_steps``
    and :math:`T` = ``total_steps``: a fixed-length run ends at a small learning rate, so its
    final model does not depend on where a large step happened to land.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    warmup_steps, total_steps : int
        ``0 <= warmup_steps < total_steps``.

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
    """
    warmup_steps = check_count(warmup_steps, "warmup_steps")
    total_steps = check_positive_count(total_steps, "total_steps")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
    w, T = warmup_steps, total_steps
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: max(0.0, min((s + 1) / max(w, 1), (T - s) / (T - w))))
