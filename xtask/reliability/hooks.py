"""Schemathesis hooks for the gallery's attack runs (`cargo xtask reliability`).

What a real client sends: every POST, PUT and PATCH carries
`x-amz-content-sha256`, the hex SHA-256 of the exact body bytes (CloudFront's
origin access control signs the payload with it, and the API refuses a
mismatch). The hash is filled in on the prepared request, after the body is
encoded, so it covers every request schemathesis sends (all phases, stateful
steps and its checks' own probes). A request from which a check removed the
header on purpose is left without it.

The run's own artist and tokens are out of its reach: a case whose path names
one of them (GALLERY_PROTECTED_IDS) is not sent, so the run cannot revoke,
suspend or erase the identity it attacks with.

A header value with a control character is not HTTP (RFC 9110, section 5.5):
the server's parser refuses it before any route runs (hyper locally with a
bare 400, CloudFront deployed with its own error page), so such values are
not sent; the gallery could not answer them either way.

Page cursors are opaque (only one the API returned is valid), so generated
ones are left out; hostile cursors have their own test
(`tests/it/api/hostile.rs`).
"""

import hashlib
import os

import requests
import schemathesis

HASH_HEADER = "x-amz-content-sha256"
PROTECTED = {i.strip().lower() for i in os.environ.get("GALLERY_PROTECTED_IDS", "").split(",") if i.strip()}

_prepare_request = requests.Session.prepare_request


def _with_payload_hash(self, request):
    prepared = _prepare_request(self, request)
    if HASH_HEADER in prepared.headers:
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        prepared.headers[HASH_HEADER] = hashlib.sha256(body).hexdigest()
    return prepared


requests.Session.prepare_request = _with_payload_hash


def _is_http(value):
    return not any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in str(value))


@schemathesis.hook
def filter_case(ctx, case):
    values = {str(v).lower() for v in (case.path_parameters or {}).values()}
    headers_are_http = all(_is_http(v) for v in (case.headers or {}).values())
    return headers_are_http and not (values & PROTECTED)


def _without_cursor(query):
    if isinstance(query, dict):
        query.pop("cursor", None)
    return query


@schemathesis.hook
def map_query(ctx, query):
    return _without_cursor(query)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # The coverage phase builds its cases without the map and filter hooks.
    _without_cursor(case.query)
    if case.headers:
        for name, value in list(case.headers.items()):
            if not _is_http(value):
                case.headers[name] = "".join(c for c in str(value) if _is_http(c))
