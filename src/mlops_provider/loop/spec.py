"""The model spec: one YAML file per model holding everything model-specific, validated against a schema.

The DAG factory (:func:`mlops_provider.loop.factory.build_dags`) turns a spec into the five DAGs of a model's loop;
``mlops spec check FILE`` validates one. Every key, its default and what is allowed: ``docs/model-spec.md``.
Paths in a spec (suite, entrypoint, hyperparameters, behaviour tests) are relative to the spec file's folder.

**Spec -> operator arguments, one rule.** A spec value reaches an operator only through a ``<task>_arguments()``
method that returns the operator's keyword arguments (named as the operator's parameters): on the section that
holds the values (``spec.monitoring.drift_arguments()``), or on :class:`ModelSpec` when the task reads several
sections or a path the spec resolves (``spec.train_arguments()``). The factory spreads them and adds only the
loop's wiring (task and DAG ids, assets, model and dataset names, templates, upstream results, pools, callbacks).
A new option touches its section (field + arguments), its row in ``docs/model-spec.md`` and its operator.

**Two modules, one way to read a spec.** This module holds what reading a spec needs: the sections' behaviour
(their ``*_arguments()`` methods and derived values), the folder rules, the validated-spec cache and its read-only
view. The schema (the pydantic models, their validators, :func:`parse_spec`) lives in
:mod:`mlops_provider.loop.spec_schema`, imported only when a spec is validated (a cache miss, ``mlops spec check``)
or when a schema class is named: ``from mlops_provider.loop.spec import ModelSpec`` works as always. A DAG file's
parse of cached specs defines no pydantic model (issue 31: the ~21 models cost as much as a floor parse); it gets
:class:`SpecView` objects, equal to the validated models, with the same attributes and methods.

Imports nothing heavy (PyYAML and pydantic come with Airflow, and load only to validate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from mlops_provider.exceptions import SpecError

if TYPE_CHECKING:  # the schema module loads on a validation, or when one of its names is asked for (__getattr__)
    from mlops_provider.loop.spec_schema import ModelSpec

from mlops_provider.loop import spec_sections
from mlops_provider.loop.spec_sections import (  # noqa: F401 (the spec's public names, read from here)
    DRIFT_METHODS,
    ENDPOINT_PORT_OFFSET_ENV,
    NAME,
    NOTIFICATION_EVENTS,
    SERVING_QUEUE_ENV,
    XGBOOST_FORBIDDEN,
    feature_name_problem,
    label_matches,
    label_problems,
    suite_label_values,
)

if TYPE_CHECKING:  # the schema module loads on a validation, or when one of its names is asked for (__getattr__)
    from mlops_provider.loop.spec_schema import ModelSpec

#: The suffix of a spec file. ``*.yml`` (and other cases of either) in a models folder is reported, not read.
SPEC_SUFFIX = ".yaml"


#: The schema module's public names, served by :func:`__getattr__` (``from mlops_provider.loop.spec import ModelSpec``).
SCHEMA_NAMES = ("ModelSpec", "DatasetSpec", "LabelSpec", "ColumnDriftSpec", "FeaturesSpec", "SplitSpec",
                "SearchRangeSpec", "TuningSpec", "TrainingSpec", "GateSpec", "CanaryThresholdsSpec", "CanarySpec",
                "EndpointSpec", "CaptureSpec", "ServingSpec", "MonitoringSpec", "RetrainingSpec", "NotificationsSpec",
                "RetentionSpec", "ScheduleSpec", "parse_spec", "tuning_problems", "_messages", "BaseModel")  # fmt: skip


def __getattr__(name: str) -> Any:
    """The schema's names, from :mod:`mlops_provider.loop.spec_schema` (imported on first use)."""
    if name in SCHEMA_NAMES:
        from mlops_provider.loop import spec_schema

        return getattr(spec_schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_spec(path: str | Path, *, cached: bool = False) -> ModelSpec:
    """Read and validate one spec file (a ``*.yaml``: the only files the DAG factory reads). YAML: libyaml's safe
    loader when PyYAML was built with it (5x faster on a spec), else the pure-Python one.

    ``cached``: use the validated-spec cache (:func:`cached_spec`; the DAG factory does, ``mlops spec check`` does
    not): a spec validated before, whose file, the files it names and the validating code are unchanged, is
    rebuilt from the cache without YAML or validation; any other is validated as always and, valid, cached."""
    path = Path(path).resolve()
    if path.suffix != SPEC_SUFFIX:
        raise SpecError(
            f"{path}: not read as a model spec: the DAG factory reads only *{SPEC_SUFFIX} files; "
            f"rename it to {path.stem}{SPEC_SUFFIX}"
        )
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc.strerror}") from None
    if cached and (spec := cached_spec(path, text)) is not None:
        return spec
    import yaml

    from mlops_provider.loop.spec_schema import parse_spec

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    spec = parse_spec(data, path)
    if cached:
        _cache_spec(path, text, spec)
    return spec


# -- the validated-spec cache (issue 31) ----------------------------------------------------------------------------
#
# The dag processor parses the DAG file again and again, and validating a spec means building the spec models'
# pydantic-core schemas (they are deferred), reading YAML and checking the files the spec names. A valid spec is
# therefore kept as JSON under MLOPS_HOME (``cache/specs/<key>.json``), keyed by the SHA-256 of the validating code,
# the spec's path and its text; the entry lists the files the spec names with their SHA-256, which a hit checks
# again (a changed or missing file, a changed spec, a changed validator: a miss, so never stale). Only valid specs
# are cached: a bad one is validated on every parse and gives the same message. Errors of the cache itself (a
# read-only or full disk, a torn or foreign entry) only make a miss. A hit builds a :class:`SpecView` (no pydantic
# model is defined or built): the entry holds the spec's ``model_dump(mode="json")`` and its shape (which values are
# sections, paths and dates, from the schema's annotations when it was written).

#: The modules whose code decides whether a spec is valid (the key hashes their source; a test checks the list
#: against what importing them loads).
VALIDATING_MODULES = ("loop/spec.py", "loop/spec_sections.py", "loop/spec_schema.py", "layout.py", "exceptions.py",
                      "ml/hyperparameters.py", "ml/split.py", "ml/tuning.py", "ml/canary.py")  # fmt: skip
_CACHE_FORMAT = 2
log = logging.getLogger(__name__)
_code_digest: str | None = None


def _validating_code() -> str:
    """SHA-256 of the validating modules' source and the pydantic version (once per process)."""
    global _code_digest
    if _code_digest is None:
        import pydantic

        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256(f"{_CACHE_FORMAT} {pydantic.VERSION}".encode())
        for name in VALIDATING_MODULES:
            digest.update(name.encode() + b"\0" + (root / name).read_bytes())
        _code_digest = digest.hexdigest()
    return _code_digest


def spec_cache_file(path: Path, text: str) -> Path:
    """The cache entry of the spec at ``path`` (resolved) with content ``text``."""
    from mlops_provider.utils.paths import home_folder

    key = hashlib.sha256(f"{_validating_code()}\0{path}\0".encode() + text.encode()).hexdigest()
    return home_folder("cache", "specs", f"{key}.json")


def _file_digests(spec: ModelSpec) -> dict[str, str]:
    """SHA-256 of every file the spec names, by resolved path."""
    found = {}
    for value in spec.files().values():
        file = spec.resolve(value)
        found[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def cached_spec(path: Path, text: str) -> ModelSpec | None:
    """The spec at ``path`` with content ``text`` from the cache (a :class:`SpecView`), or None (no entry, or a file
    it names changed)."""
    try:
        entry = json.loads(spec_cache_file(path, text).read_text())
        spec = cast("ModelSpec", _viewed(entry["shape"], entry["spec"], path=path))
        if _file_digests(spec) != entry["files"]:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return spec


def _cache_spec(path: Path, text: str, spec: ModelSpec) -> None:
    """Keep a valid spec (when the cache rebuilds it equal to the validated one)."""
    from mlops_provider.loop.spec_schema import ModelSpec, shape_of

    try:
        entry = {"spec": spec.model_dump(mode="json"), "shape": shape_of(ModelSpec), "files": _file_digests(spec)}
        rebuilt = _viewed(entry["shape"], json.loads(json.dumps(entry["spec"])), path=path)
        if rebuilt != spec or repr(rebuilt) != repr(spec):
            log.debug("Model spec %s is not cached: the cache would not rebuild it as validated", path)
            return
        from mlops_provider.utils.files import write_atomic

        write_atomic(spec_cache_file(path, text), lambda tmp: tmp.write_text(json.dumps(entry)))
    except (OSError, ValueError, TypeError) as exc:
        log.debug("Model spec %s is not cached: %s", path, exc)


class SpecView:
    """A read-only view of a validated section (or the whole spec) rebuilt from the cache: its fields as attributes,
    in the schema's order, and its section's methods (the ``_<Section>Methods`` classes both share). Equal to the
    pydantic model it was dumped from, with the same ``repr``; iterating gives ``(field, value)`` pairs, as a
    model's does. Built by :func:`cached_spec` only; validate a spec with :func:`load_spec` (or ``mlops spec
    check``)."""

    __slots__ = ("_fields",)
    #: the schema class it stands for (its name: repr and equality)
    section: str = "Section"

    def __init__(self, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"{self.section} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{self.section} is read-only (a validated spec from the cache)")

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._fields.items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpecView) and type(other).__name__ != self.section:
            return NotImplemented
        name = other.section if isinstance(other, SpecView) else type(other).__name__
        return name == self.section and list(self) == list(cast("Any", other))

    def __hash__(self) -> int:
        return hash(repr(self))

    def __copy__(self) -> SpecView:  # read-only: a copy is itself (as for a tuple)
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SpecView:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuilt_view, (self.section, self._fields)

    def __repr__(self) -> str:  # as pydantic's: Name(field=value, ...)
        return f"{self.section}({', '.join(f'{name}={value!r}' for name, value in self)})"


def _view_class(section: str) -> type[SpecView]:
    methods = getattr(spec_sections, f"_{section}Methods", None)
    bases = (methods, SpecView) if methods else (SpecView,)
    return type(section, bases, {"__slots__": (), "section": section})


_VIEWS: dict[str, type[SpecView]] = {}


def _rebuilt_view(section: str, fields: dict[str, Any]) -> SpecView:
    """A view of ``section`` over ``fields`` (unpickling)."""
    view = _VIEWS.get(section) or _VIEWS.setdefault(section, _view_class(section))
    return view(fields)


def _viewed(shape: Any, value: Any, **extra: Any) -> Any:
    """``value`` (JSON) as the schema's ``shape`` says (:func:`mlops_provider.loop.spec_schema.shape_of`)."""
    if value is None or shape is None:
        return value
    if shape == "path":
        return Path(value)
    if shape == "date":
        return dt.date.fromisoformat(value)
    if "list" in shape:
        return [_viewed(shape["list"], v) for v in value]
    if "dict" in shape:
        return {k: _viewed(shape["dict"], v) for k, v in value.items()}
    fields = shape["fields"]
    if not isinstance(value, dict) or set(value) - set(fields):
        raise ValueError(f"not a {shape['section']}")
    view = _VIEWS.get(shape["section"]) or _VIEWS.setdefault(shape["section"], _view_class(shape["section"]))
    return view({**{name: _viewed(fields[name], value[name]) for name in fields if name in value}, **extra})


class SpecProblem(NamedTuple):
    """A spec file that cannot be used. ``message`` names the file and the key (one line per broken key);
    ``others`` are the files it conflicts with when a rule across files broke."""

    path: Path
    message: str
    others: tuple[Path, ...] = ()

    def involves(self, path: Path) -> bool:
        """Whether ``path`` is the file of the problem or one it conflicts with."""
        return path == self.path or path in self.others


class SpecFolder(NamedTuple):
    """A folder of specs checked as the DAG factory reads it: the usable ``specs`` and the ``problems`` of the
    other files, one per file (a bad file never makes a good one unusable, except as a rule across files says)."""

    specs: list[ModelSpec]
    problems: list[SpecProblem]


def spec_files(folder: str | Path) -> list[Path]:
    """The files of ``folder`` that are specs (``*.yaml``) or look like one (``*.yml``, ``*.YAML``: reported as not
    read), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SpecError(f"{folder}: the models folder does not exist or is not a folder (MLOPS_MODELS_DIR)")
    return sorted(p.resolve() for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())


def check_folder(folder: str | Path, *, cached: bool = False) -> SpecFolder:
    """Every spec of ``folder``, each on its own, then the rules across files: model names are unique, and models
    that share a dataset agree on where it comes from and how it is validated (they share its versioned
    partitions). A file that breaks a rule becomes a problem; the others stay usable:

    - two files with one model name: the file named after the model (``<name>.yaml``) is kept, else the first by
      path; the other is the problem, naming both files;
    - models on one dataset that disagree: the version most of them agree on is kept (a tie: the one of the first
      file by path); each other model is a problem, naming the file it disagrees with.

    ``cached``: read each spec through the validated-spec cache (:func:`load_spec`).
    """
    specs, problems = [], []
    for path in spec_files(folder):
        try:
            specs.append(load_spec(path, cached=cached))
        except SpecError as exc:
            problems.append(SpecProblem(path, str(exc)))
    specs, conflicts = _unique_names(specs)
    problems += conflicts
    specs, conflicts = _shared_datasets(specs)
    problems += conflicts
    return SpecFolder(specs=specs, problems=sorted(problems, key=lambda p: p.path))


def _path(spec: ModelSpec) -> Path:
    assert spec.path is not None  # set by load_spec
    return spec.path


def _unique_names(specs: list[ModelSpec]) -> tuple[list[ModelSpec], list[SpecProblem]]:
    by_name: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        by_name.setdefault(spec.name, []).append(spec)
    kept, problems = [], []
    for name, group in by_name.items():
        keep = next((s for s in group if _path(s).stem == name), group[0])
        why = "its file is named after the model" if _path(keep).stem == name else "it comes first by file name"
        kept.append(keep)
        problems += [
            SpecProblem(
                _path(spec),
                f"{_path(spec)}: name: model {name!r} is also defined in {_path(keep)}, whose DAGs are kept ({why}); "
                "give this model a name of its own (and rename the file to match), or delete one of the two files",
                others=(_path(keep),),
            )
            for spec in group
            if spec is not keep
        ]
    return sorted(kept, key=_path), problems


def _shared_datasets(specs: list[ModelSpec]) -> tuple[list[ModelSpec], list[SpecProblem]]:
    by_dataset: dict[str, dict[tuple[str, Path], list[ModelSpec]]] = {}
    for spec in specs:  # sorted by path
        source = (repr(list(spec.dataset)), spec.resolve(spec.validation))  # every field, a model's or a view's
        by_dataset.setdefault(spec.dataset.name, {}).setdefault(source, []).append(spec)
    kept, problems = [], []
    for dataset, versions in by_dataset.items():
        agreed = max(versions.values(), key=len)  # a tie: the first seen, which holds the first file by path
        kept += agreed
        reference = agreed[0]
        problems += [
            SpecProblem(
                _path(spec),
                f"{_path(spec)}: dataset: models {reference.name!r} ({_path(reference)}) and {spec.name!r} share "
                f"dataset {dataset!r} but differ in its source or validation suite; models on one dataset share its "
                f"partitions, so give them the same dataset section and suite (the DAGs of {reference.name!r} are "
                "kept, this model's are not built until they agree)",
                others=(_path(reference),),
            )
            for version in versions.values()
            if version is not agreed
            for spec in version
        ]
    return _shared_schedules(sorted(kept, key=_path), problems)


def _shared_schedules(specs: list[ModelSpec], problems: list[SpecProblem]) -> tuple[list[ModelSpec], list[SpecProblem]]:
    """Models on one dataset share one ingest DAG (``<dataset>__ingest``), so they must agree on ``schedule.ingest``;
    the schedule most of them name is kept (a tie: the first file by path), the others are problems."""
    by_dataset: dict[str, dict[str, list[ModelSpec]]] = {}
    for spec in specs:  # sorted by path
        by_dataset.setdefault(spec.dataset.name, {}).setdefault(spec.schedule.ingest, []).append(spec)
    kept = []
    for dataset, schedules in by_dataset.items():
        agreed = max(schedules.values(), key=len)
        kept += agreed
        reference = agreed[0]
        problems += [
            SpecProblem(
                _path(spec),
                f"{_path(spec)}: schedule.ingest: models {reference.name!r} ({_path(reference)}) and {spec.name!r} "
                f"share dataset {dataset!r} but differ in schedule.ingest ({reference.schedule.ingest!r} and "
                f"{spec.schedule.ingest!r}); one ingest DAG, {dataset}__ingest, runs for a shared dataset, so give "
                f"them the same schedule.ingest (the DAGs of {reference.name!r} are kept, this model's are not built "
                "until they agree)",
                others=(_path(reference),),
            )
            for group in schedules.values()
            if group is not agreed
            for spec in group
        ]
    return sorted(kept, key=_path), problems


def load_specs(folder: str | Path) -> list[ModelSpec]:
    """Every spec of a folder, checked together (:func:`check_folder`); raises :class:`SpecError` naming every
    problem if any file is unusable. The DAG factory uses :func:`check_folder`, so one bad file costs only its
    own model's DAGs."""
    checked = check_folder(folder)
    if checked.problems:
        raise SpecError("\n".join(problem.message for problem in checked.problems))
    return checked.specs
