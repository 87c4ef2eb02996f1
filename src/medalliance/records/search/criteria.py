"""Parsing search parameters into criteria; what cannot be understood becomes a warning
(lenient) or a 400 (``Prefer: handling=strict``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from medalliance.errors import DomainError
from medalliance.kit.fhir import DEFAULT_COUNT, MAX_COUNT, split_values
from medalliance.records import structure
from medalliance.records.links import HOMES
from medalliance.records.searchparams import (
    SearchParam,
    chain_target,
    params_for,
    reference_targets,
)

MODIFIERS = {
    "token": {"missing", "not", "text"},
    "uri": {"missing"},
    "string": {"missing", "exact", "contains"},
    "date": {"missing"},
    "reference": {"missing"},
    "quantity": {"missing"},
    "number": {"missing"},
}
RESULT_PARAMS = frozenset(
    {"_sort", "_count", "_include", "_revinclude", "_summary", "_elements", "_total", "_cursor"}
)
IGNORED_PARAMS = frozenset({"_format", "_pretty"})
SORT_TYPES = frozenset({"date", "string", "token"})
# What a chain into a type another domain owns can ask: the MPI and the registry find
# their rows by identifier (ID number, MRN, licence, institution code) or id.
OWNED_CHAIN_PARAMS = {
    "Patient": ("identifier", "_id"),
    "Organization": ("identifier", "_id"),
    "Practitioner": ("identifier", "_id"),
}


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: its values are OR-ed, criteria are AND-ed."""

    param: SearchParam | None  # None for _id / _lastUpdated (resource columns)
    name: str
    modifier: str | None
    values: tuple[str, ...]
    chain: Chain | None = None  # subject:Patient.identifier=…: values unused


@dataclass(frozen=True)
class Chain:
    """The criterion a chained reference's targets must meet (one level, as R4 servers
    commonly support)."""

    target_type: str
    criterion: Criterion


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None


@dataclass
class Query:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: tuple[str, bool] | None = None  # (param, descending)
    count: int = DEFAULT_COUNT
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary_count: bool = False
    total: bool = False
    elements: tuple[str, ...] | None = None  # of the searched type
    summary: str | None = None  # true, text or data: included resources get their own
    cursor: str | None = None
    warnings: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, value) not applied


class Parser:
    def __init__(self, resource_type: str, *, strict: bool) -> None:
        self.query = Query(resource_type)
        self.strict = strict
        self.params = params_for(resource_type)
        self.current = ("", "")  # the parameter being read, for ``problem``

    def problem(self, message: str, name: str, *, instead: str = "ignored") -> None:
        """``message`` says what cannot be done: under strict handling the 400's
        diagnostics, otherwise a warning that also says what was done ``instead``."""
        if self.strict:
            raise DomainError(message, field=name)
        self.query.warnings.append(f"{message}; {instead}")
        self.query.ignored.append(self.current)

    def add(self, key: str, value: str) -> None:
        self.current = (key, value)
        name, _, modifier = key.partition(":")
        if name in IGNORED_PARAMS:
            return
        if name in RESULT_PARAMS:
            self.result_param(name, modifier, value)
            return
        if "." in key:
            self.chained(key, value)
            return
        if name in ("_id", "_lastUpdated"):
            self.column_param(name, modifier, value)
            return
        param = self.params.get(name)
        if param is None:
            self.problem(f"unknown search parameter {key} for {self.query.resource_type}", key)
            return
        known = MODIFIERS.get(param.type, set())
        typed_reference = param.type == "reference" and modifier[:1].isupper()
        if modifier and modifier not in known and not typed_reference:
            self.problem(f"modifier :{modifier} is not supported on {name}", key)
            return
        values = tuple(v for v in split_values(value) if v != "")
        if not values:
            self.problem(f"parameter {key} has no value", key)
            return
        self.query.criteria.append(Criterion(param, name, modifier or None, values))

    def chained(self, key: str, value: str) -> None:
        """``name[:Type].param=value``: resources whose ``name`` reference points at a
        ``Type`` matching ``param=value``."""
        head, _, inner = key.partition(".")
        name, _, target = head.partition(":")
        param = self.params.get(name)
        if param is None or param.type != "reference":
            self.problem(f"{key}: {name} is not a reference parameter", key)
            return
        if "." in inner:
            self.problem(f"{key}: only one level of chaining is supported", key)
            return
        target = target or chain_target(param) or ""
        if not target:
            example = _typed(key)
            self.problem(f"{key}: {name} can refer to several types; name one, as {example}", key)
            return
        if target not in reference_targets(param) or not _chainable(target, inner):
            self.problem(f"{key}: cannot search {target} by {inner} through {name}", key)
            return
        nested = Parser(target, strict=self.strict)
        nested.add(inner, value)
        self.query.warnings += [f"{key}: {w}" for w in nested.query.warnings]
        if nested.query.criteria:
            chain = Chain(target, nested.query.criteria[0])
            self.query.criteria.append(Criterion(param, name, None, (), chain))

    def column_param(self, name: str, modifier: str, value: str) -> None:
        if modifier:
            self.problem(f"modifier :{modifier} is not supported on {name}", name)
            return
        values = tuple(v for v in split_values(value) if v)
        if values:
            self.query.criteria.append(Criterion(None, name, None, values))

    def result_param(self, name: str, modifier: str, value: str) -> None:
        q = self.query
        if name == "_count":
            if not (value.isascii() and value.isdigit()):  # int() refuses "²"
                raise DomainError("_count must be a non-negative integer", field="_count")
            q.count = min(int(value), MAX_COUNT)
        elif name == "_sort":
            self.sort(value)
        elif name in ("_include", "_revinclude"):
            self.include(name, modifier, value)
        elif name == "_summary":
            self.summary(value)
        elif name == "_total":
            q.total = value == "accurate"
        elif name == "_elements":
            asked = tuple(e.strip() for e in value.split(",") if e.strip())
            q.elements, q.summary = structure.with_mandatory(q.resource_type, asked), None
        elif name == "_cursor":
            q.cursor = value

    def summary(self, value: str) -> None:
        q = self.query
        if value == "count":
            q.summary_count = True
        elif value in structure.SUMMARIES:
            q.elements, q.summary = structure.SUMMARIES[value](q.resource_type), value
        elif value != "false":
            self.problem(
                f"_summary={value} is not one of true, text, data, count, false", "_summary"
            )

    def sort(self, value: str) -> None:
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            return
        if len(keys) > 1:
            self.problem(
                "_sort takes one key here", "_sort", instead="the first is used, the id breaks ties"
            )
        key = keys[0]
        descending = key.startswith("-")
        name = key.lstrip("-")
        param = self.params.get(name)
        if name not in ("_id", "_lastUpdated") and (param is None or param.type not in SORT_TYPES):
            self.problem(f"cannot sort by {name}", "_sort", instead="sorted by creation order")
            return
        self.query.sort = (name, descending)

    def include(self, name: str, modifier: str, value: str) -> None:
        parts = value.split(":")
        if modifier == "iterate" or len(parts) not in (2, 3):
            self.problem(f"{name}={value} is not supported", name)
            return
        source, param_code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        param = params_for(source).get(param_code)
        if param is None or param.type != "reference":
            self.problem(f"{name}={value}: {param_code} is not a reference of {source}", name)
            return
        include = Include(source, param_code, target)
        if name == "_include":
            if source != self.query.resource_type:
                self.problem(f"_include={value} does not start at {self.query.resource_type}", name)
                return
            self.query.includes.append(include)
        else:
            self.query.revincludes.append(include)


def _chainable(target: str, inner: str) -> bool:
    """Whether a chain into ``target`` can ask ``inner``: the owned types answer what
    their domains can find; stored types any search parameter but ``_lastUpdated`` and the
    :missing and :not modifiers (matches of an index, not the resources without them)."""
    name, _, modifier = inner.partition(":")
    if target in OWNED_CHAIN_PARAMS:
        return name in OWNED_CHAIN_PARAMS[target] and not modifier
    if target in HOMES or name in RESULT_PARAMS or name == "_lastUpdated":
        return False
    return modifier not in ("missing", "not")


def _typed(key: str) -> str:
    """The chain with its reference typed, as an example (``subject:Patient.name``)."""
    head, _, inner = key.partition(".")
    return f"{head.partition(':')[0]}:Patient.{inner}"


def parse(resource_type: str, params: list[tuple[str, str]], *, strict: bool) -> Query:
    parser = Parser(resource_type, strict=strict)
    for key, value in params:
        parser.add(key, value)
    return parser.query
