"""NetScore and information density.

A. Wong, "NetScore: Towards Universal Metrics for Large-scale Performance Analysis of Deep
Neural Networks for Practical On-Device Edge Usage", arXiv:1806.05512 (2018)::

    Omega = 20 * log10( a**alpha / (p**beta * m**gamma) )

with ``a`` the top-1 accuracy in percent, ``p`` the parameters in millions and ``m`` the
multiply-accumulates in billions (GMACs); alpha = 2, beta = gamma = 0.5. Changing a unit
shifts every score by a constant (``a`` as a fraction: -80; ``p`` as a raw count: -60), so the
units are part of every score shown.

Information density (Canziani, Paszke, Culurciello, arXiv:1605.07678) is ``a / p``: top-1
accuracy in percent per million parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

ALPHA, BETA, GAMMA = 2.0, 0.5, 0.5
UNITS = "a in % top-1, p in millions of parameters, m in GMACs"
ACCURACY_METADATA_KEY = "onnxscore.accuracy"


@dataclass(frozen=True)
class NetScore:
    """A NetScore, its inputs, and why it is missing when it is."""

    value: Optional[float]
    accuracy: Optional[float]
    params: int
    macs: int
    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA
    info_density: Optional[float] = None
    missing: Optional[str] = None
    units: str = UNITS


def netscore(accuracy: Optional[float], params: int, macs: int, alpha: float = ALPHA,
             beta: float = BETA, gamma: float = GAMMA) -> NetScore:
    """Omega = 20*log10(a**alpha / (p**beta * m**gamma)); a in %, p in M, m in GMACs.

    Returns a :class:`NetScore` whose ``value`` is None, with ``missing`` saying why, when the
    accuracy is not given or the parameters or MACs are zero.
    """
    kw = dict(accuracy=accuracy, params=params, macs=macs, alpha=alpha, beta=beta, gamma=gamma)
    if accuracy is None:
        return NetScore(None, missing="no accuracy: pass --accuracy TOP1_PERCENT or set the model "
                        f"metadata key {ACCURACY_METADATA_KEY!r}", **kw)
    if not 0 < accuracy <= 100:
        return NetScore(None, missing=f"accuracy {accuracy} is not a top-1 percentage in (0, 100]",
                        **kw)
    p, m = params / 1e6, macs / 1e9
    density = accuracy / p if p > 0 else None
    if p <= 0 or m <= 0:
        what = "parameters" if p <= 0 else "MACs"
        return NetScore(None, info_density=density, missing=f"the model has no {what}", **kw)
    value = 20 * math.log10(accuracy ** alpha / (p ** beta * m ** gamma))
    return NetScore(value, info_density=density, **kw)
