"""One client for both backends: boto3's `sagemaker-runtime`, pointed at SageMaker or at the local server.

```python
client = runtime_client("http://127.0.0.1:8080")          # local server; None → SageMaker
predictions = invoke(client, "playerguard", [{"player_id": "p1", "sessions_7d": 3, ...}])
```
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from playerguard.errors import PlayerguardError


class EndpointError(PlayerguardError):
    """The endpoint refused a request: `status` is the model server's HTTP status, `code` its error code."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def runtime_client(
    endpoint_url: str | None = None, *, region: str | None = None, session: Any = None, timeout: float = 60.0
) -> Any:
    """A `sagemaker-runtime` client. With `endpoint_url` on loopback (the local server) requests are not
    signed, so no AWS credentials are needed; otherwise the usual credential chain applies."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    options: dict[str, Any] = {"read_timeout": timeout, "retries": {"mode": "standard", "max_attempts": 3}}
    local = endpoint_url is not None and urlsplit(endpoint_url).hostname in ("127.0.0.1", "localhost", "::1")
    if local:
        options["signature_version"] = UNSIGNED
        region = region or "us-east-1"  # botocore needs one; the local server ignores it
    session = session or boto3.Session()
    return session.client(
        "sagemaker-runtime", region_name=region, endpoint_url=endpoint_url, config=Config(**options)
    )


def _encode(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def invoke(
    client: Any, endpoint_name: str, payload: Any, *, content_type: str = "application/json"
) -> list[dict[str, Any]]:
    """Score `payload` (records, `{"instances": ...}`, `{"events": ...}`, or an encoded body such as CSV)
    and return the predictions; EndpointError naming the problem when the endpoint refuses it."""
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, ContentType=content_type, Accept="application/json", Body=_encode(payload)
        )
    except client.exceptions.ModelError as error:
        status = error.response.get("OriginalStatusCode")
        original = error.response.get("OriginalMessage") or ""
        try:
            details = json.loads(original)
        except ValueError:
            details = {"message": original or str(error)}
        details = details if isinstance(details, dict) else {"message": original}
        message = str(details.get("message") or error)
        raise EndpointError(f"endpoint {endpoint_name} refused the request ({status}): {message}", status,
                            str(details.get("error") or "")) from None
    return json.loads(response["Body"].read())["predictions"]
