"""Parsing search parameters into criteria; what cannot be understood becomes a warning
(lenient) or a 400 (``Prefer: handling=strict``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from medalliance.errors import DomainError
from medalliance.kit.fhir import DEFAULT_COUNT, MAX_COUNT
from medalliance.records.searchparams import SearchParam, params_for

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
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


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: its values are OR-ed, criteria are AND-ed."""

    param: SearchParam | None  # None for _id / _lastUpdated (resource columns)
    name: str
    modifier: str | None
    values: tuple[str, ...]


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
    elements: tuple[str, ...] | None = None
    cursor: str | None = None
    warnings: list[str] = field(default_factory=list)


class Parser:
    def __init__(self, resource_type: str, *, strict: bool) -> None:
        self.query = Query(resource_type)
        self.strict = strict
        self.params = params_for(resource_type)

    def problem(self, message: str, name: str) -> None:
        if self.strict:
            raise DomainError(message, field=name)
        self.query.warnings.append(message)

    def add(self, key: str, value: str) -> None:
        name, _, modifier = key.partition(":")
        if name in IGNORED_PARAMS:
            return
        if name in RESULT_PARAMS:
            self.result_param(name, modifier, value)
            return
        if "." in name:
            self.problem(f"chained parameter {key} is not supported; it was ignored", key)
            return
        if name in ("_id", "_lastUpdated"):
            self.column_param(name, modifier, value)
            return
        param = self.params.get(name)
        if param is None:
            self.problem(
                f"unknown search parameter {key} for {self.query.resource_type}; ignored", key
            )
            return
        known = MODIFIERS.get(param.type, set())
        typed_reference = param.type == "reference" and modifier[:1].isupper()
        if modifier and modifier not in known and not typed_reference:
            self.problem(f"modifier :{modifier} is not supported on {name}; ignored", key)
            return
        values = tuple(v for v in _split_values(value) if v != "")
        if not values:
            self.problem(f"parameter {key} has no value; ignored", key)
            return
        self.query.criteria.append(Criterion(param, name, modifier or None, values))

    def column_param(self, name: str, modifier: str, value: str) -> None:
        if modifier:
            self.problem(f"modifier :{modifier} is not supported on {name}; ignored", name)
            return
        values = tuple(v for v in _split_values(value) if v)
        if values:
            self.query.criteria.append(Criterion(None, name, None, values))

    def result_param(self, name: str, modifier: str, value: str) -> None:
        q = self.query
        if name == "_count":
            if not value.isdigit():
                raise DomainError("_count must be a non-negative integer", field="_count")
            q.count = min(int(value), MAX_COUNT)
        elif name == "_sort":
            self.sort(value)
        elif name in ("_include", "_revinclude"):
            self.include(name, modifier, value)
        elif name == "_summary":
            if value == "count":
                q.summary_count = True
            elif value != "false":
                self.problem(f"_summary={value} is not supported (only count); ignored", name)
        elif name == "_total":
            q.total = value == "accurate"
        elif name == "_elements":
            q.elements = tuple(e.strip() for e in value.split(",") if e.strip())
        elif name == "_cursor":
            q.cursor = value

    def sort(self, value: str) -> None:
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            return
        if len(keys) > 1:
            self.problem("only the first _sort key is used; the id breaks ties", "_sort")
        key = keys[0]
        descending = key.startswith("-")
        name = key.lstrip("-")
        param = self.params.get(name)
        if name not in ("_id", "_lastUpdated") and (param is None or param.type not in SORT_TYPES):
            self.problem(f"cannot sort by {name}; sorted by creation order", "_sort")
            return
        self.query.sort = (name, descending)

    def include(self, name: str, modifier: str, value: str) -> None:
        parts = value.split(":")
        if modifier == "iterate" or len(parts) not in (2, 3):
            self.problem(f"{name}={value} is not supported; ignored", name)
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


def _split_values(raw: str) -> list[str]:
    """Comma-separated OR values; ``\\,`` is a literal comma."""
    values, current, escaped = [], [], False
    for char in raw:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return [v.strip() for v in values]


def parse(resource_type: str, params: list[tuple[str, str]], *, strict: bool) -> Query:
    parser = Parser(resource_type, strict=strict)
    for key, value in params:
        parser.add(key, value)
    return parser.query


def split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value
