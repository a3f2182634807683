"""The write budget's shares in the state table: a fixed number of places, `budget#0` .. `budget#31`.

Why places, and not one item per process found by a Scan: a Scan of the state table reads every item
in it (the progress, the holds), and costs more as it grows, at every publication of every process
(KCL's lease-table scans are a known complaint). Why not one item per process plus a list of members:
the list is one more hot item that every join and leave rewrites, and a process that dies never takes
itself off it. With K fixed places a reading is one BatchGetItem of K keys, whatever happened before
(K x 0.5 read units: eventually consistent reads, as a second of staleness is nothing against 5-second
publications), and a dead process's place is simply taken over once its rate is older than
LIVE_SECONDS: by a conditional put that expects the very item that was read (its member and time), so
two processes never take one place.

Each place holds `member` (the process's id), `units_per_second`, `published_at` (its wall clock,
Unix seconds) and `expires_at` (integer Unix seconds; the table may use it as its TTL attribute, but
nothing relies on that). A process keeps its place by publishing under the condition that the place
is still its own; when it was silent so long that another took it, it takes another free place. A
33rd process finds none and is told so (it then splits the budget evenly with the processes it sees,
without them counting it: documented as the limit of the design).
"""

from __future__ import annotations

import random
from typing import Any

from botocore.exceptions import ClientError

from user_migration.adapters.dynamodb.errors import error_code, target_errors
from user_migration.adapters.dynamodb.tables import STATE_KEY_ATTRIBUTE
from user_migration.adapters.retry import Backoff
from user_migration.domain.budget.shares import LIVE_SECONDS, SHARING_PLACES, PublishedRate, is_live
from user_migration.domain.errors import TargetThrottled
from user_migration.ports.write_budget import BudgetShares

PLACE_PREFIX = "budget#"
CONDITION_FAILED = "ConditionalCheckFailedException"


def _place_key(place: int) -> dict[str, Any]:
    return {STATE_KEY_ATTRIBUTE: {"S": f"{PLACE_PREFIX}{place}"}}


def _rate_of(item: dict[str, Any]) -> PublishedRate:
    return PublishedRate(item["member"]["S"], float(item["units_per_second"]["N"]), float(item["published_at"]["N"]))


class DynamoDbBudgetShares(BudgetShares):
    """The shares of one process (it remembers its place) in the state table `table`."""

    def __init__(self, client: Any, table: str, places: int = SHARING_PLACES, backoff: Backoff | None = None) -> None:
        self._client = client
        self._table = table
        self._places = places
        self._backoff = backoff if backoff is not None else Backoff(attempts=4)
        self._place: int | None = None

    async def _read_places(self) -> dict[int, dict[str, Any]]:
        keys = [_place_key(place) for place in range(self._places)]
        found: dict[int, dict[str, Any]] = {}
        attempt = 0
        while keys:
            async with target_errors("reading the write budget's shares", table=self._table):
                response = await self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
            for item in response.get("Responses", {}).get(self._table, []):
                found[int(item[STATE_KEY_ATTRIBUTE]["S"].removeprefix(PLACE_PREFIX))] = item
            keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
            if keys:
                attempt += 1
                if attempt >= self._backoff.attempts:
                    raise TargetThrottled("DynamoDB left the write budget's shares unread")
                await self._backoff.pause(attempt)
        return found

    async def rates(self) -> list[PublishedRate]:
        return [_rate_of(item) for item in (await self._read_places()).values()]

    async def _put(self, place: int, member: str, units: float, now: float, condition: dict[str, Any]) -> bool:
        item = {
            **_place_key(place),
            "member": {"S": member},
            "units_per_second": {"N": f"{units:.3f}"},
            "published_at": {"N": f"{now:.3f}"},
            "expires_at": {"N": str(int(now + LIVE_SECONDS) + 1)},
        }
        async with target_errors("publishing the write budget's share", table=self._table):
            try:
                await self._client.put_item(TableName=self._table, Item=item, **condition)
            except ClientError as error:
                if error_code(error) == CONDITION_FAILED:
                    return False
                raise
        return True

    async def publish(self, member: str, units_per_second: float, now: float) -> bool:
        member_is = {
            "ConditionExpression": "#m = :m",
            "ExpressionAttributeNames": {"#m": "member"},
            "ExpressionAttributeValues": {":m": {"S": member}},
        }
        if self._place is not None:
            if await self._put(self._place, member, units_per_second, now, member_is):
                return True
            self._place = None  # taken over while this process was silent too long
        places = await self._read_places()
        # A place already ours (a claim whose answer was lost) is kept rather than a second one taken.
        mine = [place for place, item in places.items() if item["member"]["S"] == member]
        free = [
            place
            for place in range(self._places)
            if place not in mine and (place not in places or not is_live(_rate_of(places[place]), now))
        ]
        random.shuffle(free)  # processes starting together then seldom race for one place
        for place in mine + free:
            held = places.get(place)
            if held is None:
                condition: dict[str, Any] = {
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": STATE_KEY_ATTRIBUTE},
                }
            else:  # exactly the item read: another process taking it meanwhile makes this fail
                condition = {
                    "ConditionExpression": "#m = :m AND #p = :p",
                    "ExpressionAttributeNames": {"#m": "member", "#p": "published_at"},
                    "ExpressionAttributeValues": {":m": held["member"], ":p": held["published_at"]},
                }
            if await self._put(place, member, units_per_second, now, condition):
                self._place = place
                return True
        return False

    async def leave(self, member: str) -> None:
        if self._place is None:
            return
        place, self._place = self._place, None
        async with target_errors("leaving the write budget's shares", table=self._table):
            try:
                await self._client.delete_item(
                    TableName=self._table,
                    Key=_place_key(place),
                    ConditionExpression="#m = :m",
                    ExpressionAttributeNames={"#m": "member"},
                    ExpressionAttributeValues={":m": {"S": member}},
                )
            except ClientError as error:
                if error_code(error) != CONDITION_FAILED:  # another process holds it now: leave it be
                    raise
