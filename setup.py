"""minigen: a from-scratch deep-learning engine for generative models.

The top-level ``kernels/`` folder is installed as ``minigen.kernels`` (see
``package_dir``) so that no bare top-level ``kernels`` import name is claimed
in site-packages.
"""
from setuptools import setup, find_packages

packages = [p for p in find_packages(include=["minigen", "minigen.*"])]
packages += ["minigen.kernels"] + ["minigen.kernels." + p for p in find_packages(where="kernels")]

setup(
    name="minigen",
    version="0.1.0",
    description="A from-scratch deep-learning engine for generative models (NumPy + Numba + CuPy)",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages,
    package_dir={"minigen.kernels": "kernels"},
    package_data={"minigen": ["data/files/*", "data/files/fsdd/*"]},
    include_package_data=True,
    install_requires=[
        "numpy>=2.0",
        "numba>=0.60",
        "threadpoolctl>=3.1",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "pillow>=9.0",
        "matplotlib>=3.6",
    ],
    extras_require={
        # the test extra brings MPI too (mpi4py + the mpich wheel, mpiexec included): the distributed tests run
        # from the README test command on a fresh machine, no extra step
        "test": ["pytest>=7", "hypothesis>=6.80", "mpi4py>=4", "mpich"],
        # pip install minigen[gpu] -> CuPy for CUDA 12.x; pick the wheel matching the driver's CUDA major:
        "gpu": ["cupy-cuda12x>=13"],
        "gpu-cuda12": ["cupy-cuda12x>=13"],
        "gpu-cuda13": ["cupy-cuda13x>=13"],
        "bench": ["torch"],
        "distributed": ["mpi4py>=4", "mpich"],
        "docs": ["mkdocs>=1.6,<2", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26", "mkdocs-gen-files>=0.5", "playwright>=1.40", "jupytext>=1.16", "pytest>=7", "hypothesis>=6.80"],
    },
    entry_points={"console_scripts": ["minigen=minigen.cli:main"]},
)
