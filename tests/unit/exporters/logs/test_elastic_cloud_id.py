"""Elastic Cloud IDs decode to the URL the official client would connect to,
and API keys in either form become the header value Elasticsearch expects."""

from __future__ import annotations

import base64

import pytest
from elastic_transport.client_utils import parse_cloud_id

from modelmon.exporters.logs.elasticsearch_sink import api_key_credentials, cloud_id_url


def _cloud_id(name: str, payload: str) -> str:
    return f"{name}:{base64.b64encode(payload.encode()).decode()}"


@pytest.mark.parametrize("payload", [
    "eu-west-1.aws.found.io$4fa8821e75634032bed1cf22110e2f97$4fa8821e75634032bed1cf22110e2f98",
    "us-central1.gcp.cloud.es.io:9243$abc123$def456",
    "westeurope.azure.elastic-cloud.com:443$e5f6$",
    "eu-west-1.aws.found.io$onlyes",
])
def test_cloud_ids_decode_as_the_official_client_does(payload) -> None:
    cloud_id = _cloud_id("fraud-logs", payload)
    host, port = parse_cloud_id(cloud_id).es_address  # type: ignore[misc]
    assert cloud_id_url(cloud_id) == f"https://{host}:{port}"


@pytest.mark.parametrize("cloud_id", ["", "name-only", "x:%%%", _cloud_id("x", "host-only"),
                                      _cloud_id("x", "$uuid$kb"), _cloud_id("x", "h:port$uuid")])
def test_a_bad_cloud_id_names_the_field_and_the_fix(cloud_id) -> None:
    with pytest.raises(ValueError, match=r"^cloud_id: not an Elastic Cloud ID.*Elastic Cloud console"):
        cloud_id_url(cloud_id)


def test_api_keys_encoded_or_as_id_and_key() -> None:
    encoded = base64.b64encode(b"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw").decode()
    assert api_key_credentials(encoded) == encoded
    assert api_key_credentials("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw") == encoded
