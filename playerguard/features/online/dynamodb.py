"""The online feature snapshot on AWS: a DynamoDB table keyed by player_id.

Items are `{player_id, cutoff, features}` with the features as JSON text (DynamoDB numbers cannot hold
NaN and need Decimal; JSON keeps floats exact and undefined features as null). Writing overwrites each
player's item; lookups use BatchGetItem, 100 keys a call, retrying unprocessed keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from playerguard.errors import ConfigError, DataError
from playerguard.features.online.base import parse_features, snapshot_rows

if TYPE_CHECKING:
    import pandas as pd

    from playerguard.settings import Settings

_BATCH_GET_LIMIT = 100
_RETRIES = 8


class DynamoDBFeatureStore:
    """Player features in DynamoDB. The boto3 resource is built on first use unless one is passed."""

    def __init__(self, table_name: str, *, resource: Any = None, region: str | None = None) -> None:
        self.table_name = table_name
        self._resource = resource
        self._region = region

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> DynamoDBFeatureStore:
        """The table PLAYERGUARD_ONLINE_TABLE names; a ConfigError when it names none."""
        if not settings.online_table:
            raise ConfigError(
                "PLAYERGUARD_ONLINE_TABLE is not set: name the DynamoDB table of the online snapshot"
            )
        return cls(settings.online_table, region=settings.region, **options)

    @property
    def location(self) -> str:
        return f"DynamoDB table {self.table_name}"

    def _dynamodb(self) -> Any:
        if self._resource is None:
            import boto3

            self._resource = boto3.resource("dynamodb", region_name=self._region)
        return self._resource

    def create_table(self) -> None:
        """Create the table (on-demand capacity) and wait until it exists."""
        table = self._dynamodb().create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": "player_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "player_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        table.wait_until_exists()

    def write(self, features: pd.DataFrame) -> int:
        """Put one item per player of `features` (overwriting earlier items); returns the number written."""
        written = 0
        table = self._dynamodb().Table(self.table_name)
        with table.batch_writer(overwrite_by_pkeys=["player_id"]) as batch:
            for player, cutoff, document in snapshot_rows(features):
                batch.put_item(Item={"player_id": player, "cutoff": cutoff, "features": document})
                written += 1
        return written

    def lookup(self, player_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Features of each known player (unknown players are absent from the result)."""
        ids = list(dict.fromkeys(str(p) for p in player_ids))
        found: dict[str, dict[str, float]] = {}
        resource = self._dynamodb()
        for start in range(0, len(ids), _BATCH_GET_LIMIT):
            request = {
                self.table_name: {
                    "Keys": [{"player_id": p} for p in ids[start : start + _BATCH_GET_LIMIT]],
                    "ProjectionExpression": "player_id, features",
                }
            }
            for attempt in range(_RETRIES):
                response = resource.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item["player_id"]] = parse_features(item["features"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise DataError(f"DynamoDB kept {len(request[self.table_name]['Keys'])} keys unprocessed")
        return found
