"""Every registered kernel states its contract: the reference it must equal, resolvable to a real callable."""
import importlib

import pytest

from minigen.kernels import dispatch

pytestmark = pytest.mark.skipif(not dispatch.available(), reason="Numba is not installed")


def _resolve(ref):
    mod, _, qual = ref.partition(":")
    obj = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", dispatch.kernel_names("numpy"))
def test_cpu_kernel_names_its_reference(name):
    ref = dispatch.contract(name, "numpy")
    assert ref, f"kernel {name!r} is registered without reference= (its contract)"
    assert callable(_resolve(ref)), ref


def test_one_kernel_lookup_in_the_library():
    import pathlib

    import minigen

    root = pathlib.Path(minigen.__file__).parent
    import re

    bad = []
    pattern = re.compile(r"(?<!\w)(_DISPATCH|fast_kernel\(|_seq_kernels|_KERNELS|register_kernel\(|fused_kernel\()")
    for p in root.rglob("*.py"):
        for m in pattern.finditer(p.read_text()):
            bad.append(f"{p.relative_to(root)}: {m.group(0)}")
    assert bad == []
