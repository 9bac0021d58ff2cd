"""Gunicorn's request corpus (data/README.md), every case fed whole, byte by byte and in
seeded random splits: the outcome must be the corpus' and must not depend on the split.

Where forkhorn is stricter by design (HTTP/1.1 without Host), the case runs with
``permit_missing_host`` and the strict default is checked to refuse it with 400. The other
deliberate differences are in ``EXCEPTIONS``, each with the text that justifies it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from corpus_driver import Outcome, drive, splits
from forkhorn.config import Config
from forkhorn.http.parser import ParserLimits

CORPUS = json.loads((Path(__file__).parent / "data" / "gunicorn-requests.json").read_text())
CASES = {case["name"]: case for case in CORPUS["cases"]}

#: case -> (what forkhorn does instead, why). Expected values are patched as noted.
EXCEPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "valid/009": (
        {"error": ("InvalidHeader", 400)},
        "Transfer-Encoding: identity with Content-Length. RFC 9112 §6.3: 'If a "
        "Transfer-Encoding header field is present in a request and the chunked transfer "
        "coding is not the final encoding, ... the server MUST respond with the 400'; "
        "§6.1: a server MAY reject a request with both (a smuggling vector).",
    ),
    "valid/099": (
        {"error": ("IncompleteBody", 400)},
        "The input ends 9315 bytes before its Content-Length: 17914. RFC 9112 §8: such a "
        "message is incomplete; Gunicorn hands the app the short body silently. forkhorn "
        "decodes the same prefix, then the end of input is an error.",
    ),
    "valid/100": (
        {"path": "///keeping_slashes"},
        "RFC 9112 §3.2.1: origin-form = absolute-path ['?' query], absolute-path = "
        "1*('/' segment): '///keeping_slashes' is all path (empty segments); Gunicorn's "
        "urlsplit reads '//keeping_slashes' as an authority and drops a slash.",
    ),
    "valid/rfc9112_target_authority_connect_01": (
        {"scheme": "", "path": "example.com:443"},
        "RFC 9112 §3.2.3: authority-form = uri-host ':' port, no scheme; Gunicorn's urlsplit "
        "reports scheme 'example.com' and path '443' (yet path '[::1]:443' for the IPv6 "
        "case). forkhorn reports every authority-form target as the path, as the IPv6 case.",
    ),
    "valid/rfc9112_target_absolute_userinfo_01": (
        {"error": ("InvalidRequestLine", 400)},
        "RFC 9110 §4.2.4: 'A recipient SHOULD parse for userinfo and treat its presence as "
        "an error; it is likely being used to obscure the authority for the sake of "
        "phishing attacks.'",
    ),
}


def limits_for(settings: dict[str, Any], **extra: Any) -> tuple[ParserLimits, Config]:
    cfg = Config()
    for name, value in {**settings, **extra}.items():
        if name == "proxy_protocol" and isinstance(value, bool):
            value = "auto" if value else "off"  # CONTRACTS.md: true == auto, false == off
        cfg.set(name, value)
    return ParserLimits.from_config(cfg), cfg


def run_case(case: dict[str, Any], **extra: Any) -> dict[str, Outcome]:
    limits, cfg = limits_for(case["settings"], **extra)
    raw = base64.b64decode(case["raw_b64"])
    return {
        strategy: drive(
            chunks,
            limits,
            proxy_mode=cfg.proxy_protocol,
            forwarded_allow_ips=cfg.forwarded_allow_ips,
            secure_scheme_headers=cfg.secure_scheme_headers,
        )
        for strategy, chunks in splits(raw).items()
    }


def expected_requests(case: dict[str, Any]) -> list[dict[str, Any]]:
    result = []
    for request in case["requests"]:
        result.append(
            {
                "method": request["method"],
                "uri": request["uri"],
                "version": request["version"],
                "headers": request["headers"],
                "body": base64.b64decode(request.get("body_b64", "")),
                "trailers": request.get("trailers", []),
            }
        )
    return result


def lacks_host(case: dict[str, Any]) -> bool:
    return any(
        request["version"] == [1, 1] and not any(n == "HOST" for n, _ in request["headers"])
        for request in case["requests"]
    )


def comparable(outcome: Outcome) -> Outcome:
    """After an error, how much of the body was decoded before it depends on the split
    (the payload of the failing ``feed`` call is lost with it): compare heads only."""
    if outcome.error is None:
        return outcome
    heads = [{**request, "body": b""} for request in outcome.requests]
    return Outcome(heads, outcome.error)


def assert_same_everywhere(outcomes: dict[str, Outcome]) -> Outcome:
    whole = outcomes["whole"]
    for strategy, outcome in outcomes.items():
        assert comparable(outcome) == comparable(whole), f"{strategy} differs from whole"
    return whole


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("valid/")])
def test_valid_case(name: str) -> None:
    case = CASES[name]
    patch, _why = EXCEPTIONS.get(name, ({}, ""))
    extra: dict[str, Any] = {}
    if lacks_host(case):
        refused = assert_same_everywhere(run_case(case))
        assert refused.error is not None and refused.error[1] == 400, refused.error
        assert refused.error[0] == "InvalidHost" or "error" in patch
        extra["permit_missing_host"] = True
    outcome = assert_same_everywhere(run_case(case, **extra))
    if "error" in patch:
        assert outcome.error == patch["error"]
        if name == "valid/099":  # the body prefix that did arrive is the corpus' body
            assert outcome.requests == expected_requests(case)
        return
    assert outcome.error is None, outcome.error
    expected = expected_requests(case)
    for request in expected:
        request["uri"] = {
            **request["uri"],
            **{k: patch[k] for k in ("scheme", "path") if k in patch},
        }
    assert outcome.requests == expected


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("invalid/")])
def test_invalid_case(name: str) -> None:
    case = CASES[name]
    patch, _why = EXCEPTIONS.get(name, ({}, ""))
    outcome = assert_same_everywhere(run_case(case))
    if patch.get("valid"):
        assert outcome.error is None
        assert len(outcome.requests) == 1
        return
    assert outcome.error is not None, "accepted an invalid request"
    assert outcome.error[1] == case["status"], outcome.error
    if outcome.error[0] == "InvalidHost" and case["error"] != "InvalidHost":
        # no Host on HTTP/1.1 is refused first; with the leniency the corpus' error shows
        outcome = assert_same_everywhere(run_case(case, permit_missing_host=True))
    assert outcome.error is not None
    assert outcome.error == (case["error"], case["status"])


def test_corpus_counts() -> None:
    assert sum(name.startswith("valid/") for name in CASES) == 63
    assert sum(name.startswith("invalid/") for name in CASES) == 74
    assert set(EXCEPTIONS) <= set(CASES)


def test_limit_field_size_zero_means_gunicorns_default() -> None:
    limits, _ = limits_for({"limit_request_field_size": 0})
    assert limits.max_field_size == 8190
    ok = b"GET / HTTP/1.0\r\nX: " + b"y" * (8190 - 5) + b"\r\n\r\n"
    over = b"GET / HTTP/1.0\r\nX: " + b"y" * (8190 - 4) + b"\r\n\r\n"
    assert drive([ok], limits).error is None
    assert drive([over], limits).error == ("LimitRequestHeaders", 431)


def test_limit_field_size_is_capped_at_the_maximum() -> None:
    limits, _ = limits_for({"limit_request_field_size": 10**6})
    assert limits.max_field_size == 32760
