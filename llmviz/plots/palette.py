"""Colours every chart shares: Okabe & Ito's palette, safe for colour-blind readers.

About 1 in 12 men in a class sees red and green alike (deuteranopia / protanopia). The series
colours here stay apart under the three simulated colour-vision deficiencies (Machado, Oliveira &
Fernandes 2009, full severity): :func:`min_distance` measures it (CIE76 ΔE in Lab) and the tests
require at least :data:`MIN_DELTA_E` for every chart's set of series colours.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

BLUE, ORANGE, GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
PURPLE, SKY, YELLOW, BLACK = "#CC79A7", "#56B4E9", "#F0E442", "#000000"
GREY, LIGHT = "#6b7280", "#e5e7eb"  # "no data" / background ink, never a series of its own

#: Series colours in the order charts use them.
OKABE_ITO = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, BLACK)
#: Two series colours must differ by at least this, with and without each simulated deficiency.
MIN_DELTA_E = 12.0

#: Machado et al. 2009, severity 1.0, applied to linear RGB.
CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}  # fmt: skip
_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _linear(colour: str) -> np.ndarray:
    c = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    xyz = (_XYZ @ np.clip(linear, 0.0, 1.0)) / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def min_distance(colours: Sequence[str]) -> tuple[float, str, str, str]:
    """The closest pair of ``colours`` (``#rrggbb``) as seen with normal vision and each simulated
    deficiency: ``(ΔE, vision, colour a, colour b)``.

    >>> round(min_distance(["#0072B2", "#E69F00"])[0]) > 40
    True
    """
    worst = (float("inf"), "", "", "")
    for vision, matrix in (("normal", None), *CVD.items()):
        m = None if matrix is None else np.array(matrix)
        for a, b in itertools.combinations(dict.fromkeys(c.upper() for c in colours), 2):
            la, lb = _linear(a), _linear(b)
            if m is not None:
                la, lb = m @ la, m @ lb
            d = float(np.linalg.norm(_lab(la) - _lab(lb)))
            if d < worst[0]:
                worst = (d, vision, a, b)
    return worst
