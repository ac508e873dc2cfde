"""Random number generation: ``mg.manual_seed`` and ``mg.Generator``.

A :class:`Generator` wraps NumPy's PCG64 bit generator (and, lazily, a CuPy
generator for tensors created on a GPU), so every random op in minigen draws
from an explicit, seedable stream. Its state can be saved in checkpoints
(``get_state``/``set_state`` return JSON-friendly dicts, no pickle).
"""
from __future__ import annotations

import numpy as np


class Generator:
    """A seedable random stream. ``Generator(device='cpu').manual_seed(0)``."""

    def __init__(self, device="cpu", seed=None):
        self.device = str(device)
        self.manual_seed(0 if seed is None else seed)  # checks the seed (an int; negatives taken modulo 2**64)

    def manual_seed(self, seed: int) -> "Generator":
        """Seed the stream. Any int is accepted (as in PyTorch, negatives too: taken modulo 2**64)."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            from .errors import DTypeError

            raise DTypeError(f"manual_seed: the seed must be an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self._np = np.random.Generator(np.random.PCG64(self._seed % 2**64))
        self._cupy = None
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying NumPy generator (what the CPU reference ops draw from)."""
        return self._np

    def cupy(self):
        """A CuPy generator seeded from this stream (created on first GPU use)."""
        if self._cupy is None:
            import cupy

            self._cupy = cupy.random.default_rng(int(self._np.integers(0, 2**63 - 1)))
        return self._cupy

    def get_state(self) -> dict:
        st = self._np.bit_generator.state
        return {
            "bit_generator": st["bit_generator"],
            "state": {k: int(v) for k, v in st["state"].items()},
            "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"]),
            "seed": self._seed,
        }

    def set_state(self, state: dict) -> None:
        from .errors import InvalidArgumentError

        keys = ("bit_generator", "state", "has_uint32", "uinteger")
        if not isinstance(state, dict) or any(k not in state for k in keys):
            raise InvalidArgumentError(
                f"set_rng_state: expected a dict with keys {keys} (from get_rng_state()), got "
                f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        st = {k: state[k] for k in keys}
        try:
            self._np.bit_generator.state = st
        except (TypeError, ValueError, KeyError) as e:
            raise InvalidArgumentError(f"set_rng_state: not a valid generator state: {e}") from None
        self._seed = int(state.get("seed", self._seed))

    def xp_generator(self, xp):
        return self._np if xp is np else self.cupy()


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (CPU and GPU streams)."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def _gen(generator) -> Generator:
    return default_generator if generator is None else generator
