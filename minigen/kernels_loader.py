"""Make ``minigen.kernels`` importable from a source checkout.

An installed minigen has the repository's top-level ``kernels/`` folder mapped to
``minigen.kernels`` by setup.py. When minigen is imported straight from a
checkout (tests run from the repo root), that mapping does not exist, so this
module registers ``<repo>/kernels`` under the same name.
"""
import importlib.util
import os
import sys


def _ensure():
    if "minigen.kernels" in sys.modules:
        return
    here = os.path.dirname(os.path.abspath(__file__))
    if os.path.isfile(os.path.join(here, "kernels", "__init__.py")):
        return  # installed layout: minigen/kernels exists
    src = os.path.join(os.path.dirname(here), "kernels")
    init = os.path.join(src, "__init__.py")
    if not os.path.isfile(init):
        return
    spec = importlib.util.spec_from_file_location("minigen.kernels", init, submodule_search_locations=[src])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["minigen.kernels"] = mod
    spec.loader.exec_module(mod)


_ensure()
