"""minigen/_malloc.py: freed arrays stay in the process (glibc), so a training step's next arrays do not
page-fault their memory in again. Checked by counting minor page faults (a count, not a timing)."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the tuning applies to glibc only")

PROBE = """
import resource, numpy as np, minigen, minigen._malloc as m
for _ in range(3):                      # a 40 MB array, allocated and freed as a step's activations are
    a = np.ones(10_000_000, np.float32); del a
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(10_000_000, np.float32); del a
print(m.applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _probe(**env):
    e = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                                           "GLIBC_TUNABLES", "MINIGEN_MALLOC_TUNING")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


def test_freed_arrays_are_reused_without_page_faults():
    applied, faults = _probe()
    assert applied
    assert faults < 50, faults          # the 40 MB block is reused: (almost) no new pages
    applied_off, faults_off = _probe(MINIGEN_MALLOC_TUNING="0")
    assert not applied_off
    assert faults_off > 10 * max(faults, 1), (faults, faults_off)  # glibc's default unmaps and faults it in


def test_user_tuning_is_left_alone():
    applied, _ = _probe(MALLOC_MMAP_THRESHOLD_="131072")
    assert not applied
