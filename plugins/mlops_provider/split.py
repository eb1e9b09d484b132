"""The provider's holdout split: which rows a model may train on and which only ever score it.

A row is in the holdout when the hash of its key (with the split's seed) falls below the fraction, so the same
key is always on the same side, in every training set and every day's data. ``TrainModelOperator`` hands the
entrypoint the two parts and records the split on the MLflow run and the model version (tags ``split.*``);
evaluation and the late-label performance check read it back from the version they score and use holdout rows
only. No user code re-implements the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SPLIT_KEY_TAG = "split.key"
SPLIT_FRACTION_TAG = "split.fraction"
SPLIT_SEED_TAG = "split.seed"
RULE = "holdout when int(md5(f'{seed}:{key}').hexdigest()[:12], 16) / 16**12 < fraction"


@dataclass(frozen=True)
class HoldoutSplit:
    """A key-hash split.

    :param key: column whose values are hashed (an entity id: a customer, a card).
    :param fraction: share of keys in the holdout, in (0, 1).
    :param seed: changes which keys are held out.
    """

    key: str
    fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("holdout.key: name the column to hash")
        if not 0 < float(self.fraction) < 1:
            raise ValueError(f"holdout.fraction: must be between 0 and 1 (exclusive), got {self.fraction!r}")
        if int(self.seed) < 0:
            raise ValueError(f"holdout.seed: must be >= 0, got {self.seed!r}")

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any], where: str = "holdout") -> HoldoutSplit:
        unknown = sorted(set(value) - {"key", "fraction", "seed"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: key, fraction, seed")
        if "key" not in value:
            raise ValueError(f"{where}: needs 'key' (the column to hash)")
        return cls(str(value["key"]), float(value.get("fraction", 0.2)), int(value.get("seed", 0)))

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> HoldoutSplit | None:
        """The split a model version (or run) was trained with; None when it carries no split tags."""
        if SPLIT_KEY_TAG not in tags:
            return None
        return cls(tags[SPLIT_KEY_TAG], float(tags[SPLIT_FRACTION_TAG]), int(tags[SPLIT_SEED_TAG]))

    def tags(self) -> dict[str, str]:
        return {SPLIT_KEY_TAG: self.key, SPLIT_FRACTION_TAG: repr(float(self.fraction)), SPLIT_SEED_TAG: str(self.seed)}

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "fraction": float(self.fraction), "seed": int(self.seed), "rule": RULE}

    def in_holdout(self, key: Any) -> bool:
        digest = hashlib.md5(f"{self.seed}:{key}".encode(), usedforsecurity=False).hexdigest()
        return int(digest[:12], 16) / 16**12 < float(self.fraction)

    def mask(self, frame: Any) -> Any:
        """Boolean Series: the rows of ``frame`` in the holdout."""
        if self.key not in frame.columns:
            raise ValueError(f"holdout.key: column {self.key!r} is not in the data (columns: {list(frame.columns)})")
        return frame[self.key].map(self.in_holdout).astype(bool)

    def split(self, frame: Any) -> tuple[Any, Any]:
        """``(train, holdout)`` parts of ``frame``."""
        mask = self.mask(frame)
        return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
