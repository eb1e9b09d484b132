"""The provider's holdout split: which rows a model may train on and which only ever score it.

Two methods (spec ``split.method``):

- ``key_hash`` (:class:`HoldoutSplit`): a row is in the holdout when the hash of its key (with the split's seed)
  falls below the fraction, so the same key is always on the same side, in every training set and every day's data.
  Rows of one day are on both sides, so whatever the day shares (weather, a campaign, an outage) is learnt from the
  training rows and scored on the holdout rows of that same day: on time-ordered data the holdout flatters a model
  that memorises the days.
- ``out_of_time`` (:class:`OutOfTimeSplit`): the holdout is the last ``holdout_days`` days of the training set (the
  day of a row is the UTC date of its ``time_column``, the dataset's timestamp column); the model trains on the days
  before. Once resolved on a training set, the split is the day the holdout starts (``holdout_from``): every row
  on or after it is unseen by the model, in the training set and in every later day's data.

``TrainModelOperator`` hands the entrypoint the two parts and records the split on the MLflow run (tags and params)
and the model version (tags ``split.*``); evaluation and the late-label performance check read it back from the
version they score (:func:`split_from_tags`) and use holdout rows only. No user code re-implements the rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

SPLIT_METHOD_TAG = "split.method"
SPLIT_KEY_TAG = "split.key"
SPLIT_FRACTION_TAG = "split.fraction"
SPLIT_SEED_TAG = "split.seed"
SPLIT_TIME_COLUMN_TAG = "split.time_column"
SPLIT_HOLDOUT_DAYS_TAG = "split.holdout_days"
SPLIT_HOLDOUT_FROM_TAG = "split.holdout_from"
SPLIT_METHODS = ("key_hash", "out_of_time")
RULE = "holdout when int(md5(f'{seed}:{key}').hexdigest()[:12], 16) / 16**12 < fraction"
OUT_OF_TIME_RULE = "holdout when the UTC date of time_column >= holdout_from (the first of the last holdout_days days)"


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
    method: ClassVar[str] = "key_hash"

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("holdout.key: name the column to hash")
        if not 0 < float(self.fraction) < 1:
            raise ValueError(f"holdout.fraction: must be between 0 and 1 (exclusive), got {self.fraction!r}")
        if int(self.seed) < 0:
            raise ValueError(f"holdout.seed: must be >= 0, got {self.seed!r}")

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any], where: str = "holdout") -> HoldoutSplit:
        unknown = sorted(set(value) - {"method", "key", "fraction", "seed"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed for method key_hash: key, fraction, seed")
        if value.get("method", "key_hash") != "key_hash":
            raise ValueError(f"{where}: method {value['method']!r} is not key_hash")
        if "key" not in value:
            raise ValueError(f"{where}: needs 'key' (the column to hash)")
        return cls(str(value["key"]), float(value.get("fraction", 0.2)), int(value.get("seed", 0)))

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> HoldoutSplit | None:
        """The split a model version (or run) was trained with; None when it carries no split tags."""
        if SPLIT_KEY_TAG not in tags or tags.get(SPLIT_METHOD_TAG, "key_hash") != "key_hash":
            return None
        return cls(tags[SPLIT_KEY_TAG], float(tags[SPLIT_FRACTION_TAG]), int(tags[SPLIT_SEED_TAG]))

    def tags(self) -> dict[str, str]:
        return {
            SPLIT_METHOD_TAG: self.method,
            SPLIT_KEY_TAG: self.key,
            SPLIT_FRACTION_TAG: repr(float(self.fraction)),
            SPLIT_SEED_TAG: str(self.seed),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "key": self.key, "fraction": float(self.fraction), "seed": int(self.seed),
                "rule": RULE}  # fmt: skip

    @property
    def column(self) -> str:
        """The column the split reads."""
        return self.key

    def resolve(self, frame: Any) -> HoldoutSplit:
        """The split as applied to ``frame``: a key hash does not depend on the data, so itself."""
        return self

    def in_holdout(self, key: Any) -> bool:
        """The rule (:data:`RULE`) for one key; :meth:`mask` applies it to a whole column at once."""
        digest = hashlib.md5(f"{self.seed}:{key}".encode(), usedforsecurity=False).hexdigest()
        return int(digest[:12], 16) / 16**12 < float(self.fraction)

    def holdout_flags(self, keys: Iterable[Any]) -> Any:
        """The rule for many keys at once: a numpy bool array, element ``i`` equal to ``in_holdout(keys[i])``.

        The same text is hashed (``f"{seed}:{key}"``), one md5 per key in a list comprehension; the first 6 bytes of
        each digest (= the first 12 hex digits) are read as big-endian integers by numpy and compared there (an
        integer below 2**48 and its division by 16**12 are exact in float64, so the comparison is the same).
        """
        import numpy as np

        md5, prefix = hashlib.md5, f"{self.seed}:"
        pad = b"\0\0"  # 2 + 6 bytes: a big-endian uint64 holding the 48-bit prefix of the digest
        buffer = b"".join([pad + md5(f"{prefix}{key}".encode(), usedforsecurity=False).digest()[:6] for key in keys])
        return np.frombuffer(buffer, dtype=">u8") / float(16**12) < float(self.fraction)

    def mask(self, frame: Any) -> Any:
        """Boolean Series: the rows of ``frame`` in the holdout."""
        import pandas as pd

        if self.key not in frame.columns:
            raise ValueError(f"holdout.key: column {self.key!r} is not in the data (columns: {list(frame.columns)})")
        # the key's text as the rule formats it (f"{key}" is format(key)), from the very values Series.map hands a
        # function: e.g. a nullable-int column with a missing value reaches it as floats ("1.0"), as it always has
        texts = frame[self.key].map(format)
        return pd.Series(self.holdout_flags(texts.tolist()), index=frame.index, dtype=bool)

    def split(self, frame: Any) -> tuple[Any, Any]:
        """``(train, holdout)`` parts of ``frame``."""
        mask = self.mask(frame)
        return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def holdout_from_day(days: Iterable[str], holdout_days: int, time_column: str = "the time column") -> str:
    """The first day of an out-of-time holdout: the ``holdout_days``-th newest of the distinct ``days`` (ISO dates).

    The holdout is that day and the days after it; the model trains on the days before. Days count as they occur in
    the data (a day left out of the window, quarantined say, is not counted). Raises ``ValueError`` naming the keys
    and numbers when fewer than ``holdout_days + 1`` distinct days are given: at least one day must remain to train on.
    """
    distinct = sorted(set(days))
    if holdout_days < 1:
        raise ValueError(f"split.holdout_days: must be >= 1, got {holdout_days}")
    if len(distinct) <= holdout_days:
        shown = ", ".join(distinct) if len(distinct) <= 10 else f"{distinct[0]} .. {distinct[-1]}"
        raise ValueError(
            f"split.holdout_days={holdout_days} needs at least {holdout_days + 1} days in the training set, but "
            f"{time_column!r} has {len(distinct)} ({shown or 'none'}): no day would be left to train on. Train on a "
            f"longer window (training.min_days >= {holdout_days + 1} makes assembly refuse such a set), or lower "
            "split.holdout_days"
        )
    return distinct[-holdout_days]


def row_days(values: Any, time_column: str = "the time column") -> Any:
    """The UTC date (ISO text) of each timestamp in ``values`` (a Series); naive timestamps are taken as UTC, as
    the extract reads them. A missing or unparseable timestamp is an error naming the column and the count."""
    import pandas as pd

    stamps = pd.to_datetime(values, utc=True, errors="coerce")
    bad = int(stamps.isna().sum())
    if bad:
        raise ValueError(
            f"split.time_column: {bad} row(s) of {time_column!r} have no readable timestamp, so their day is unknown"
        )
    return stamps.dt.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class OutOfTimeSplit:
    """An out-of-time split: the last ``holdout_days`` days of the training set are the holdout.

    :param time_column: the column placing a row in time (the dataset's timestamp column); its UTC date is the day.
    :param holdout_days: how many of the newest days of the training set are held out (>= 1).
    :param holdout_from: the first held-out day (ISO date), set by :meth:`resolve` on the training set and recorded;
        ``None`` until then. Resolved, the rule is "a row is in the holdout when its day >= holdout_from", which
        holds for the training set and for every later day's data (the model never saw those days).
    """

    time_column: str
    holdout_days: int = 1
    holdout_from: str | None = None
    method: ClassVar[str] = "out_of_time"

    def __post_init__(self) -> None:
        if not self.time_column:
            raise ValueError("split.time_column: name the column that places a row in time")
        if int(self.holdout_days) < 1:
            raise ValueError(f"split.holdout_days: must be >= 1, got {self.holdout_days!r}")

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any], where: str = "holdout") -> OutOfTimeSplit:
        unknown = sorted(set(value) - {"method", "time_column", "holdout_days", "holdout_from"})
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {unknown}; allowed for method out_of_time: time_column, holdout_days"
            )
        if not value.get("time_column"):
            raise ValueError(f"{where}: method out_of_time needs 'time_column' (the column placing a row in time)")
        return cls(str(value["time_column"]), int(value.get("holdout_days", 1)), value.get("holdout_from"))

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> OutOfTimeSplit | None:
        """The split a model version (or run) was trained with; None when it is not an out-of-time split."""
        if tags.get(SPLIT_METHOD_TAG) != cls.method:
            return None
        return cls(tags[SPLIT_TIME_COLUMN_TAG], int(tags[SPLIT_HOLDOUT_DAYS_TAG]), tags.get(SPLIT_HOLDOUT_FROM_TAG))

    def tags(self) -> dict[str, str]:
        tags = {
            SPLIT_METHOD_TAG: self.method,
            SPLIT_TIME_COLUMN_TAG: self.time_column,
            SPLIT_HOLDOUT_DAYS_TAG: str(self.holdout_days),
        }
        if self.holdout_from is not None:
            tags[SPLIT_HOLDOUT_FROM_TAG] = self.holdout_from
        return tags

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "time_column": self.time_column, "holdout_days": int(self.holdout_days),
                "holdout_from": self.holdout_from, "rule": OUT_OF_TIME_RULE}  # fmt: skip

    @property
    def column(self) -> str:
        """The column the split reads."""
        return self.time_column

    def _days(self, frame: Any) -> Any:
        if self.time_column not in frame.columns:
            raise ValueError(
                f"split.time_column: column {self.time_column!r} is not in the data (columns: {list(frame.columns)})"
            )
        return row_days(frame[self.time_column], self.time_column)

    def resolve(self, frame: Any) -> OutOfTimeSplit:
        """The split with ``holdout_from`` set from the days of ``frame`` (the training set); a resolved split is
        returned as it is."""
        if self.holdout_from is not None:
            return self
        start = holdout_from_day(self._days(frame), int(self.holdout_days), self.time_column)
        return replace(self, holdout_from=start)

    def mask(self, frame: Any) -> Any:
        """Boolean Series: the rows of ``frame`` in the holdout (resolving the split on ``frame`` first if needed)."""
        start = self.resolve(frame).holdout_from
        return (self._days(frame) >= start).astype(bool)

    def split(self, frame: Any) -> tuple[Any, Any]:
        """``(train, holdout)`` parts of ``frame``."""
        mask = self.mask(frame)
        return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


Split = HoldoutSplit | OutOfTimeSplit


def split_from_mapping(value: Mapping[str, Any], where: str = "holdout") -> Split:
    """The split an operator's ``holdout`` argument (``ModelSpec.holdout``) describes: ``method`` (default
    ``key_hash``) chooses the kind; the other keys are that kind's."""
    method = value.get("method", "key_hash")
    if method == "key_hash":
        return HoldoutSplit.from_mapping(value, where)
    if method == "out_of_time":
        return OutOfTimeSplit.from_mapping(value, where)
    raise ValueError(f"{where}: method {method!r} is not one of {', '.join(SPLIT_METHODS)}")


def split_from_tags(tags: Mapping[str, str]) -> Split | None:
    """The split recorded in a model version's (or run's) tags; None when it carries none. A version tagged before
    ``split.method`` existed is a key-hash split."""
    return OutOfTimeSplit.from_tags(tags) or HoldoutSplit.from_tags(tags)


def split_params(split: Split) -> dict[str, str]:
    """The split as MLflow run params (``split.method`` and the method's settings, ``split.holdout_from`` once
    resolved): what a run page and a search by params show."""
    return dict(split.tags())
