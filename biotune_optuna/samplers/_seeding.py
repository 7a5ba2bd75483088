"""Random streams derived from the sampler seed and a position in the study.

Randomness is never drawn from a stream held in memory: each decision gets a fresh generator
seeded by ``(seed, purpose, generation, slot, position, ...)``, where a trial's position is its
number less the dead trials a retry replaced before it. A study stopped and resumed in a
new process therefore proposes exactly the genotypes of an uninterrupted run.
"""

from __future__ import annotations

import zlib

import numpy as np


INIT = 1
OFFSPRING = 2
EXPLOIT = 3
INDEPENDENT = 4
ENCODE = 5
UNIQUE = 6


def derived_rng(entropy: int, purpose: int, *keys: int) -> np.random.Generator:
    """Return a generator determined by the sampler entropy, a purpose tag and integer keys."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([entropy, purpose, *keys])))


def stable_hash(text: str) -> int:
    """Hash a string identically in every process (unlike :func:`hash`)."""
    return zlib.crc32(text.encode("utf-8"))


class Streams:
    """The sampler's seed, shared by every collaborator that draws: one place to reseed.

    Args:
        seed: The sampler's seed; ``None``: fresh entropy (and fresh again on :meth:`reseed`).
    """

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self.entropy = _entropy(seed)

    def reseed(self) -> None:
        """Take fresh entropy, unless seeded: a seeded sampler has no stream to reseed."""
        if self._seed is None:
            self.entropy = _entropy(None)

    def rng(self, purpose: int, *keys: int) -> np.random.Generator:
        """The generator of ``purpose`` at ``keys`` (see :func:`derived_rng`)."""
        return derived_rng(self.entropy, purpose, *keys)


def _entropy(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy) % (2**64)  # type: ignore[arg-type]
    return int(seed) % (2**64)
