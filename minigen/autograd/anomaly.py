"""Anomaly mode: find the first op whose forward or backward made a NaN/Inf.

Inside ``with mg.autograd.detect_anomaly():`` every op records the user's
stack line, checks its output, and the backward checks every gradient it
returns; the first op that turns finite values into NaN/Inf raises
:class:`~minigen.errors.AnomalyError` naming the op and the line that called it.
It slows every op down, so it is for debugging only.
"""
from __future__ import annotations

from .grad_mode import STATE


class detect_anomaly:
    def __init__(self, check_nan: bool = True):
        self.mode = bool(check_nan)

    def __enter__(self):
        self.prev = STATE.anomaly
        STATE.anomaly = self.mode
        return self

    def __exit__(self, *exc):
        STATE.anomaly = self.prev
        return False


def set_detect_anomaly(mode: bool) -> None:
    STATE.anomaly = bool(mode)


def is_anomaly_enabled() -> bool:
    return STATE.anomaly
