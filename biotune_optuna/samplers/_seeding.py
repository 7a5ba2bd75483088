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
