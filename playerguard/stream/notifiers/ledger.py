"""The DynamoDB flag ledger: cross-invocation memory for SNS (delivered flag ids, cooldowns, daily budgets).

boto3 is never imported: the ledger takes a client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playerguard.inference.flags import Budgets, Cooldowns, Flag
from playerguard.inference.offers import OVER_BUDGET
from playerguard.stream.notifiers.base import Claim

_CONDITION_FAILED = "ConditionalCheckFailedException"
COOLDOWN = "cooldown"
"""The reason a suppressed flag's item gives when an earlier flag's cooldown held (else OVER_BUDGET)."""


def _condition_failed(error: Exception) -> bool:
    return getattr(error, "response", {}).get("Error", {}).get("Code") == _CONDITION_FAILED


class DynamoDbFlagLedger:
    """Cross-invocation memory for SNS: which flag_ids were delivered, the cooldown per player, and how much
    of each day's budget is spent.

    Items: `flag#<flag_id>` (status pending|published|suppressed, the `reason` of a suppression, and
    `budget_day` once the flag spent its day's budget), `cooldown#<player>#<model>#<action>` (the flag_id
    and event time of the latest flag) and `budget#<model>#<action>#<YYYY-MM-DD>` (`spent`: flags admitted
    that UTC day of event time). Conditional writes make every check race-free. The table needs a string
    hash key `pk` and may use `expires_at` as its TTL attribute.
    """

    def __init__(
        self,
        table: str,
        client: Any,
        cooldowns: Cooldowns | None = None,
        retention: timedelta = timedelta(days=30),
        budgets: Budgets | None = None,
    ) -> None:
        self.table = table
        self.client = client
        self.cooldowns = cooldowns or Cooldowns()
        self.retention = retention
        self.budgets = budgets or Budgets()
        # days whose budget was found spent: a day's count never falls, so no need to ask again
        self._spent_days: set[tuple[str, str, str]] = set()

    def _conditional_put(
        self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The attributes of the item the put replaced ({} when none), or None when the condition failed."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": condition,
            "ReturnValues": "ALL_OLD",
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            response = self.client.put_item(**kwargs)
        except Exception as error:
            if _condition_failed(error):
                return None
            raise
        return response.get("Attributes") or {}

    def _set_status(self, flag_id: str, status: str, reason: str | None = None) -> None:
        update, names, values = "SET #s = :s", {"#s": "status"}, {":s": {"S": status}}
        if reason is not None:
            update, names["#r"], values[":r"] = f"{update}, #r = :r", "reason", {"S": reason}
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"flag#{flag_id}"}},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def _suppress(self, flag_id: str, reason: str) -> Claim:
        self._set_status(flag_id, "suppressed", reason)
        return "suppressed"

    def claim(self, flag: Flag) -> Claim:
        """ "new" when the flag should be published now, else why not."""
        expires = str(int((datetime.now(UTC) + self.retention).timestamp()))
        flag_key = {"S": f"flag#{flag.flag_id}"}
        stored: dict[str, Any] = {}
        pending = {"pk": flag_key, "status": {"S": "pending"}, "expires_at": {"N": expires}}
        created = self._conditional_put(pending, "attribute_not_exists(pk)")
        if created is None:  # seen before: delivered, suppressed, or claimed by a try that died
            read = self.client.get_item(TableName=self.table, Key={"pk": flag_key}, ConsistentRead=True)
            stored = read.get("Item", {})
            status = stored.get("status", {}).get("S", "pending")
            if status == "published":
                return "duplicate"
            if status == "suppressed":
                return "suppressed"
        previous = self._claim_cooldown(flag, expires)
        if previous is None:
            return self._suppress(flag.flag_id, COOLDOWN)
        budget = self.budgets.limit(flag.model, flag.action)
        if budget is None or "budget_day" in stored:  # no budget, or spent by an earlier try of this flag
            return "new"
        if not self._spend_budget(flag, budget, expires):
            self._restore_cooldown(flag, previous)  # an offer never sent starts no cooldown
            return self._suppress(flag.flag_id, OVER_BUDGET)
        return "new"

    def _claim_cooldown(self, flag: Flag, expires: str) -> dict[str, Any] | None:
        """Take the player's cooldown item: the item it replaced ({} when none, or no cooldown), or None
        while an earlier flag's window holds."""
        window = self.cooldowns.window(flag.model, flag.action).total_seconds()
        if window <= 0:
            return {}
        epoch = flag.event_time.timestamp()
        return self._conditional_put(
            {
                "pk": {"S": f"cooldown#{flag.player_id}#{flag.model}#{flag.action}"},
                "flag_id": {"S": flag.flag_id},
                "event_epoch": {"N": repr(epoch)},
                "expires_at": {"N": expires},
            },
            "attribute_not_exists(pk) OR flag_id = :f OR event_epoch <= :lo OR event_epoch >= :hi",
            {
                ":f": {"S": flag.flag_id},
                ":lo": {"N": repr(epoch - window)},
                ":hi": {"N": repr(epoch + window)},
            },
        )

    def _restore_cooldown(self, flag: Flag, previous: dict[str, Any]) -> None:
        """Put back the cooldown item `flag` replaced, unless another flag has taken it since."""
        if self.cooldowns.window(flag.model, flag.action).total_seconds() <= 0:
            return
        mine = {
            "TableName": self.table,
            "ConditionExpression": "flag_id = :f",
            "ExpressionAttributeValues": {":f": {"S": flag.flag_id}},
        }
        try:
            if previous and previous.get("flag_id", {}).get("S") != flag.flag_id:
                self.client.put_item(Item=previous, **mine)
            else:
                key = {"pk": {"S": f"cooldown#{flag.player_id}#{flag.model}#{flag.action}"}}
                self.client.delete_item(Key=key, **mine)
        except Exception as error:
            if not _condition_failed(error):
                raise

    def _spend_budget(self, flag: Flag, budget: int, expires: str) -> bool:
        """Count the flag against its day's budget (an atomic conditional counter); False when spent."""
        day = (flag.model, flag.action, flag.event_day)
        if budget <= 0 or day in self._spent_days:
            return False
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"budget#{flag.model}#{flag.action}#{flag.event_day}"}},
                UpdateExpression="SET expires_at = :e, #b = :b ADD #n :one",
                ConditionExpression="attribute_not_exists(#n) OR #n < :b",
                ExpressionAttributeNames={"#n": "spent", "#b": "budget"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"}, ":b": {"N": str(budget)}, ":e": {"N": expires},
                },  # fmt: skip
            )
        except Exception as error:
            if not _condition_failed(error):
                raise
            self._spent_days.add(day)
            return False
        # remembered on the flag, so a redelivery of a flag claimed but never published does not count twice
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"flag#{flag.flag_id}"}},
            UpdateExpression="SET budget_day = :d",
            ExpressionAttributeValues={":d": {"S": flag.event_day}},
        )
        return True

    def confirm(self, flag_id: str) -> None:
        """Mark a flag delivered, so no later invocation publishes it again."""
        self._set_status(flag_id, "published")

    def spent(self, model: str, action: str, day: str) -> int:
        """How many flags of (model, action) the ledger admitted for events on the UTC `day` (YYYY-MM-DD)."""
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"budget#{model}#{action}#{day}"}}, ConsistentRead=True
        ).get("Item", {})
        return int(item.get("spent", {}).get("N", "0"))
