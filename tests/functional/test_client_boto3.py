"""boto3's sagemaker-runtime client against the local server: the one client for both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from endpoint_fixtures import as_records, running_server, shared_test_bundle, synthetic_features

from playerguard.inference.sagemaker_inference import load_serving_bundle
from playerguard.inference.scoring import score_frame
from playerguard.inference.server import BundleHolder, create_app
from playerguard.stream.endpoint import EndpointError, invoke, runtime_client


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> BundleHolder:
    path: Path = shared_test_bundle(tmp_path_factory)
    holder = BundleHolder(lambda: load_serving_bundle(path))
    holder.reload()
    return holder


@pytest.fixture(scope="module")
def url(holder: BundleHolder) -> Iterator[str]:
    with running_server(create_app(holder)) as base:
        yield base


def test_plain_boto3_invoke_endpoint_works_against_the_local_server(url: str, holder: BundleHolder) -> None:
    import boto3

    frame = synthetic_features(4, seed=11)
    client = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url)
    response = client.invoke_endpoint(
        EndpointName="playerguard", ContentType="application/json", Body=json.dumps(as_records(frame))
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ContentType"] == "application/json"
    predictions = json.loads(response["Body"].read())["predictions"]
    assert predictions == json.loads(json.dumps(score_frame(holder.current.bundle, frame)))


def test_custom_attributes_ask_for_reasons_on_every_row_as_against_sagemaker(url: str, holder: BundleHolder) -> None:
    frame = synthetic_features(30, seed=13)
    client = runtime_client(url)
    body = json.dumps(as_records(frame))

    def predictions(**options: str) -> list[dict]:
        response = client.invoke_endpoint(
            EndpointName="playerguard", ContentType="application/json", Body=body, **options
        )
        return json.loads(response["Body"].read())["predictions"]

    every = predictions(CustomAttributes="trace=7; reasons=all")
    assert every == json.loads(json.dumps(score_frame(holder.current.bundle, frame, reasons="all")))
    assert predictions() == predictions(CustomAttributes="reasons=acted") != every
    with pytest.raises(client.exceptions.ModelError) as caught:
        predictions(CustomAttributes="reasons=approx")
    assert json.loads(caught.value.response["OriginalMessage"])["error"] == "invalid_reasons"
    assert "use acted or all" in caught.value.response["Error"]["Message"]


def test_boto3_raises_model_error_with_the_original_status_as_against_sagemaker(url: str) -> None:
    client = runtime_client(url)
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName="playerguard", ContentType="application/json", Body=b'[{"player_id": 1}]')
    assert caught.value.response["OriginalStatusCode"] == 400
    assert json.loads(caught.value.response["OriginalMessage"])["error"] == "missing_feature"
    assert "missing feature" in caught.value.response["Error"]["Message"]


def test_the_client_helper_needs_no_aws_credentials_for_the_local_server(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    frame = synthetic_features(3, seed=12)
    client = runtime_client(url)
    from_json = invoke(client, "playerguard", {"instances": as_records(frame)})
    from_csv = invoke(client, "playerguard", frame.to_csv(index=False), content_type="text/csv")
    assert [p["player_id"] for p in from_json] == frame["player_id"].tolist()
    assert from_json == from_csv


def test_the_client_helper_raises_endpoint_error_with_the_code(url: str) -> None:
    client = runtime_client(url)
    with pytest.raises(EndpointError) as caught:
        invoke(client, "playerguard", "player_id\np1\n", content_type="text/csv")
    assert (caught.value.status, caught.value.code) == (400, "missing_feature")
    with pytest.raises(EndpointError) as caught:
        invoke(client, "playerguard", b"<xml/>", content_type="application/xml")
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")
