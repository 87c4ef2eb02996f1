"""FHIR responses built from stored bytes: bundles are assembled around the raw JSON of
each resource, which is never parsed on the way out (except for ``_elements``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Request, Response

from medalliance.kit import fhirjson
from medalliance.kit.fhir import (
    FhirResponse,
    http_date,
    not_modified,
    operation_outcome,
    warning_outcome,
)
from medalliance.records import structure
from medalliance.records.search.engine import SearchResult
from medalliance.records.store import StoredResource, dump

if TYPE_CHECKING:  # the service renders nothing: no import cycle to fear, none made
    from medalliance.records.service import History

_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


_DONE = {"PUT": "updated", "PATCH": "patched", "POST": "matched"}  # POST: If-None-Exist
_WRITES = frozenset(_DONE)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def resource_response(item: StoredResource, request: Request, *, status: int = 200) -> Response:
    """A read's or a write's answer; a read the client's copy answers is a 304, no body
    (If-None-Match, If-Modified-Since)."""
    headers = {"ETag": item.etag, "Last-Modified": http_date(item.last_updated)}
    if request.method == "GET" and not_modified(request.headers, item.etag, item.last_updated):
        return Response(status_code=304, headers=headers)
    if status == 201:
        headers["Location"] = (
            f"{base_url(request)}/{item.resource_type}/{item.id}/_history/{item.version}"
        )
    # Prefer: return=… is about what a write answers (R4 3.1.0.8.1); a read returns the
    # resource whatever it says.
    prefer = request.headers.get("prefer", "") if request.method in _WRITES else ""
    if "return=minimal" in prefer:
        return FhirResponse(b"", status_code=status, headers=headers)
    if "return=OperationOutcome" in prefer:
        done = "created" if status == 201 else _DONE.get(request.method, "returned")
        issue = {
            "severity": "information",
            "code": "informational",
            "diagnostics": f"{item.reference} version {item.version} {done}",
        }
        body = {"resourceType": "OperationOutcome", "issue": [issue]}
        return FhirResponse(body, status_code=status, headers=headers)
    return FhirResponse(item.raw, status_code=status, headers=headers)


def _dumps(value: Any) -> bytes:
    return fhirjson.dumps(value)


def _entry(base: str, item: StoredResource, mode: str, elements: tuple[str, ...] | None) -> bytes:
    raw = item.raw if elements is None else dump(_subset(item.content, elements))
    full_url = _dumps(f"{base}/{item.resource_type}/{item.id}")
    return (
        b'{"fullUrl":'
        + full_url
        + b',"resource":'
        + raw
        + b',"search":{"mode":"'
        + mode.encode()
        + b'"}}'
    )


def _subset(content: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    keep = frozenset({"resourceType", "id", "meta", *elements})
    choices = structure.choices(str(content.get("resourceType", "")))
    subset = {k: v for k, v in content.items() if structure.keeps(k, keep, choices)}
    meta = dict(subset.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    subset["meta"] = meta
    return subset


def page_url(url: str, params: Sequence[tuple[str, str]], cursor: str | None) -> str:
    kept = [(k, v) for k, v in params if k != "_cursor"]
    if cursor:
        kept.append(("_cursor", cursor))
    return f"{url}?{urlencode(kept)}" if kept else url


def searchset(
    request: Request,
    result: SearchResult,
    *,
    search: tuple[str, Sequence[tuple[str, str]]] | None = None,
) -> FhirResponse:
    """``search``: the type and parameters of a search that did not come as GET query
    parameters (POST ``_search``); its links repeat them as a GET of the type."""
    base = base_url(request)
    entries = [_entry(base, m, "match", result.elements) for m in result.matches]
    entries += [
        _entry(base, m, "include", structure.included_elements(result.summary, m.resource_type))
        for m in result.included
    ]
    if result.warnings:
        outcome = warning_outcome(result.warnings)
        entries.append(b'{"resource":' + _dumps(outcome) + b',"search":{"mode":"outcome"}}')
    if search is None:
        links = _request_links(request, result.next_cursor, result.ignored)
    else:
        links = _links(
            f"{base}/{search[0]}", _applied(search[1], result.ignored), result.next_cursor
        )
    head: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        head["total"] = result.total
    head["link"] = links
    body = _dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
    return FhirResponse(body)


def resources_searchset(
    request: Request,
    resources: Sequence[dict[str, Any]],
    *,
    total: int,
    next_cursor: str | None,
    warnings: Sequence[str] = (),
    ignored: Sequence[tuple[str, str]] = (),
    search: tuple[str, Sequence[tuple[str, str]]] | None = None,
) -> FhirResponse:
    """A searchset of resources made up here rather than stored (the audit log's
    AuditEvents), with the links and warnings of ``searchset`` (``search`` as there)."""
    base = base_url(request)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    if warnings:
        entries.append({"resource": warning_outcome(warnings), "search": {"mode": "outcome"}})
    if search is None:
        links = _request_links(request, next_cursor, ignored)
    else:
        links = _links(f"{base}/{search[0]}", _applied(search[1], ignored), next_cursor)
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    return FhirResponse({**bundle, "entry": entries})


def _links(
    url: str,
    params: Sequence[tuple[str, str]],
    next_cursor: str | None,
    *,
    self_url: str | None = None,
) -> list[dict[str, str]]:
    """``self`` (the search as it ran, its own cursor included) and ``next``."""
    cursor = next((v for k, v in reversed(params) if k == "_cursor"), None)
    links = [{"relation": "self", "url": self_url or page_url(url, params, cursor)}]
    if next_cursor:
        links.append({"relation": "next", "url": page_url(url, params, next_cursor)})
    return links


def _request_links(
    request: Request, next_cursor: str | None, ignored: Sequence[tuple[str, str]]
) -> list[dict[str, str]]:
    """The links of a GET search: its own URL as ``self`` unless it ignored parameters."""
    url, params = str(request.url).split("?")[0], list(request.query_params.multi_items())
    self_url = None if ignored else str(request.url)
    return _links(url, _applied(params, ignored), next_cursor, self_url=self_url)


def _applied(
    params: Sequence[tuple[str, str]], ignored: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The parameters a search applied: its links show those alone (R4 search 3.1.1.4)."""
    left = list(ignored)
    applied = []
    for pair in params:
        if pair in left:
            left.remove(pair)
        else:
            applied.append(pair)
    return applied


def history_bundle(
    request: Request, history: History, *, ignored: Sequence[tuple[str, str]] = ()
) -> FhirResponse:
    """``ignored``: the parameters the history did not apply, which its links leave out
    (as a search's do). R4 gives a history no place for a warning: its entries are
    versions, each with its request and response (bdl-3, bdl-4), and only a searchset
    has outcome entries (bdl-2)."""
    base = base_url(request)
    entries = []
    for item in history.items:
        if item.deleted:
            method, url, status = "DELETE", item.reference, "200"
        elif item.created and not item.by_put:
            method, url, status = "POST", item.resource_type, "201"
        else:
            method, url, status = "PUT", item.reference, "201" if item.created else "200"
        response_part = {"status": status, "etag": item.etag}
        full_url = _dumps(f"{base}/{item.reference}")
        body = b"" if item.deleted else b',"resource":' + item.raw
        entries.append(
            b'{"fullUrl":'
            + full_url
            + body
            + b',"request":'
            + _dumps({"method": method, "url": url})
            + b',"response":'
            + _dumps(response_part)
            + b"}"
        )
    head: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if history.total is not None:
        head["total"] = history.total
    head["link"] = _request_links(request, history.next_cursor, ignored)
    return FhirResponse(_dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}")


def outcome(status: int, message: str) -> FhirResponse:
    return FhirResponse(
        operation_outcome(status, message, severity="information"), status_code=status
    )
