"""An AWS Signature Version 4 verifier written from AWS's specification
("Create a signed AWS API request", the aws-sig-v4-test-suite), sharing no code
with botocore, which signs modelmon's requests: a receiver in front of which
a botocore bug, or a request changed after signing, is refused like AWS would.

``verify`` checks the scope (date, region, service), the age of ``X-Amz-Date``
(AWS allows 5 minutes of skew each way), the body's hash and the signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$")
MAX_SKEW = dt.timedelta(minutes=5)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed: list[str], body: bytes) -> str:
    quote = urllib.parse.quote
    # Non-S3 services: each path segment URI-encoded (RFC 3986 unreserved kept)
    # after normalising; the encoded form is encoded once more.
    segments = [quote(quote(urllib.parse.unquote(s), safe="-_.~"), safe="-_.~")
                for s in (path or "/").split("/")]
    pairs = sorted((quote(urllib.parse.unquote_plus(k), safe="-_.~"),
                    quote(urllib.parse.unquote_plus(v), safe="-_.~"))
                   for k, _, v in (p.partition("=") for p in query.split("&") if p))
    lower = {k.lower(): v for k, v in headers.items()}
    lines = "".join(f"{name}:{' '.join(lower[name].split())}\n" for name in signed)
    return "\n".join([method, "/".join(segments), "&".join(f"{k}={v}" for k, v in pairs),
                      lines, ";".join(signed), hashlib.sha256(body).hexdigest()])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                      hashlib.sha256(canonical.encode()).hexdigest()])


def verify(method: str, target: str, headers: Mapping[str, str], body: bytes,
           secrets: Mapping[str, str], region: str, service: str,
           now: dt.datetime | None = None) -> str | None:
    """None when the request is signed right; else why not (AWS's error names)."""
    lower = {k.lower(): v for k, v in headers.items()}
    match = _AUTH.match(lower.get("authorization", ""))
    if match is None:
        return "MissingAuthenticationToken"
    secret = secrets.get(match["key"])
    if secret is None:
        return "UnrecognizedClientException"
    if (match["region"], match["service"]) != (region, service):
        return "SignatureDoesNotMatch: credential scope"
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "IncompleteSignature: X-Amz-Date"
    now = now or dt.datetime.now(dt.UTC)
    if abs(now - signed_at) > MAX_SKEW:
        return "InvalidSignatureException: Signature expired"
    if amz_date[:8] != match["date"]:
        return "SignatureDoesNotMatch: date"
    signed = match["signed"].split(";")
    if "host" not in signed or any(name not in lower for name in signed):
        return "SignatureDoesNotMatch: signed headers"
    path, _, query = target.partition("?")
    canonical = canonical_request(method, path, query, lower, signed, body)
    scope = f"{match['date']}/{region}/{service}/aws4_request"
    expected = hmac.new(signing_key(secret, match["date"], region, service),
                        string_to_sign(amz_date, scope, canonical).encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return "SignatureDoesNotMatch"
    return None
