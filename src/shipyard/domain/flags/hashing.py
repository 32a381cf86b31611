"""Unleash-compatible bucketing: murmur3 over ``groupId:identifier``, bit for bit.

Shared by rollouts and variants so every Shipyard client puts a user in the same bucket as any
Unleash SDK would, and a rollout's cohort survives switching SDKs.
"""

from __future__ import annotations

import mmh3

__all__ = [
    "PPM",
    "VARIANT_SEED",
    "fine_position",
    "normalized_hash",
    "rollout_hash",
]

VARIANT_SEED = 86028157
"""Seed Unleash uses for variant selection, so variants are independent of rollout buckets."""

PPM = 1_000_000
"""Sub-percent resolution: one part per million of users (0.0001 %)."""

_SUB_BUCKETS = PPM // 100


def rollout_hash(group_prefix: str, identifier: str) -> int:
    """Unsigned 32-bit murmur3 of ``<groupId>:<identifier>``; ``group_prefix`` ends with ``:``."""
    return int(mmh3.hash(group_prefix + identifier, 0, False))


def normalized_hash(identifier: str, group_id: str, normalizer: int = 100, seed: int = 0) -> int:
    """Unleash's ``normalizedHash``: a bucket in ``1..normalizer``."""
    return int(mmh3.hash(f"{group_id}:{identifier}", seed, False)) % normalizer + 1


def fine_position(h: int) -> int:
    """Place a user on a 0..999 999 line that refines Unleash's 100 buckets.

    The percent bucket (``h % 100``) is the most significant part, so for whole percentages
    ``fine_position(h) < p * 10_000`` iff ``h % 100 + 1 <= p``, exactly Unleash's rule. Remaining
    hash bits order users inside a bucket, which gives sub-percent steps that stay monotonic
    with the standard path: raising the rollout only ever adds users.
    """
    return (h % 100) * _SUB_BUCKETS + (h // 100) % _SUB_BUCKETS
