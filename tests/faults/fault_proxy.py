"""A fault-injecting TCP proxy for tests, in front of the real servers (moto, PostgreSQL).

The proxy runs its own asyncio event loop in a background thread, so tests of any kind (sync,
async, subprocess) can use it. It listens on `127.0.0.1:<free port>` and forwards every
connection to a TCP address or to a Unix socket (pgserver's PostgreSQL listens on one).

Byte-level faults (any protocol), switched at any time from the test's thread:

    proxy.refuse()          # stop listening (connection refused) and drop every open connection
    proxy.delay(1.5)        # hold every chunk the server sends back for 1.5 s
    proxy.blackhole()       # keep connections open but forward nothing, in either direction
    proxy.cut_after(5000)   # forward 5000 more bytes (both directions), then refuse() by itself
    proxy.heal()            # back to a plain pass-through; HTTP rules are removed too

HTTP-level faults (with `http=True`, for DynamoDB's JSON-over-HTTP/1.1 protocol): every request
is read whole (request line, headers, Content-Length body), its operation is taken from the
`X-Amz-Target: DynamoDB_20120810.<Operation>` header, and the first matching rule decides:

    proxy.throttle("BatchWriteItem", times=3)         # 400 ProvisionedThroughputExceededException
    proxy.fail("PutItem", user_ids={7})               # 500 InternalServerError (or any status and code)
    proxy.unprocessed({7, 12})                        # those users come back in UnprocessedItems
    proxy.unprocessed({7}, operation="BatchGetItem")  # those keys come back in UnprocessedKeys
    proxy.hangup("PutItem", user_ids={3})             # close the connection, forward nothing
    proxy.lose_response("BatchWriteItem")             # forward, then close without answering
    proxy.stall("PutItem", forward=True)              # forward (or not), then never answer
    proxy.slow("BatchWriteItem", seconds=2)           # forward, answer 2 s later
    proxy.inject_before("PutItem", make)              # send another request first (a foreign writer)

A rule is matched by operation (None: any), by `times`, by a predicate `when` on the request's
JSON body, and by `user_ids`: the request concerns one of them (`request_user_ids`): the Item of a
PutItem, the Key of a GetItem, DeleteItem or UpdateItem, a PutRequest or DeleteRequest of a
BatchWriteItem, a key of a BatchGetItem. A Scan concerns no user id: match it by operation.

The SDK signs requests (SigV4 over the body) but moto does not check signatures, so the proxy may
change a body as long as it fixes Content-Length. botocore does check DynamoDB's `x-amz-crc32`
response header, so every response the proxy writes or changes carries a recomputed one.
Each request is forwarded on a fresh upstream connection (`Connection: close`) while the client's
connection is kept alive, which keeps the parsing simple: a response ends where the upstream
connection ends.

The proxy also counts what it saw: requests per operation, and how many times each user id was
written (`puts`): sent to the server in a BatchWriteItem PutRequest, or in a PutItem that the
server answered 200 (a conditional put whose condition failed wrote nothing), so tests can prove
"written once" in both write modes; `put_order` has the same ids in the order they were written,
`deletes` counts DeleteItems answered 200 (the item was removed), and `seen_user_ids` has the
user ids of every request in the order the requests arrived (what a client is working on now).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

CHUNK = 64 * 1024
ERROR_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
THROTTLING_TYPE = ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException"
REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}


# --------------------------------------------------------------------------------------------
# HTTP messages
# --------------------------------------------------------------------------------------------


@dataclass
class HttpMessage:
    """One HTTP/1.1 request or response: start line, headers in order, whole body."""

    start_line: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def without(self, *names: str) -> list[tuple[str, str]]:
        lowered = {name.lower() for name in names}
        return [(key, value) for key, value in self.headers if key.lower() not in lowered]

    @property
    def operation(self) -> str:
        """The DynamoDB operation of a request (`BatchWriteItem`), or "" for anything else."""
        target = self.header("X-Amz-Target") or ""
        return target.rpartition(".")[2]

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def with_json(self, document: dict[str, Any], operation: str | None = None) -> HttpMessage:
        """A copy with another JSON body (and, for a request, perhaps another operation)."""
        headers = self.without("Content-Length", "x-amz-crc32")
        if operation is not None:
            headers = [
                (key, f"DynamoDB_20120810.{operation}" if key.lower() == "x-amz-target" else value)
                for key, value in headers
            ]
        return HttpMessage(self.start_line, headers, json.dumps(document).encode())

    def encode(self, connection: str) -> bytes:
        """Wire bytes with an exact Content-Length and the given `Connection` header."""
        headers = self.without("Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive")
        if self.start_line.startswith("HTTP/"):
            # botocore checks the CRC32 of DynamoDB responses: keep it right after a rewrite.
            headers = [(key, value) for key, value in headers if key.lower() != "x-amz-crc32"]
            headers.append(("x-amz-crc32", str(zlib.crc32(self.body) & 0xFFFFFFFF)))
        headers += [("Content-Length", str(len(self.body))), ("Connection", connection)]
        head = self.start_line + "\r\n" + "".join(f"{key}: {value}\r\n" for key, value in headers) + "\r\n"
        return head.encode("latin-1") + self.body


def dynamodb_response(status: int, document: dict[str, Any]) -> HttpMessage:
    """A response as DynamoDB would write it (JSON 1.0, request id, CRC32 of the body)."""
    reason = REASONS.get(status, "Error")
    headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", uuid.uuid4().hex)]
    return HttpMessage(f"HTTP/1.1 {status} {reason}", headers, json.dumps(document).encode())


async def read_message(reader: asyncio.StreamReader, response: bool) -> HttpMessage | None:
    """Read one message; None when the peer closed before sending one.

    A request's body is its Content-Length (or chunked); a response without a length runs to the
    end of the connection, which is fine since upstream connections carry one request each.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise ConnectionError("connection closed inside a message head") from error
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    message = HttpMessage(lines[0], headers)
    if (message.header("Transfer-Encoding") or "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        message.body = b"".join(parts)
    elif message.header("Content-Length") is not None:
        message.body = await reader.readexactly(int(message.header("Content-Length") or 0))
    elif response:
        message.body = await reader.read()
    return message


# --------------------------------------------------------------------------------------------
# HTTP rules
# --------------------------------------------------------------------------------------------


@dataclass
class Rule:
    """One HTTP-level fault: applies to requests of `operation` (None: any) that concern one of
    `user_ids` (if given; see `request_user_ids`) and for which `when` (a predicate on the
    request's JSON body) holds, `times` times (None: for ever)."""

    action: str
    operation: str | None = None
    times: int | None = None
    when: Callable[[dict[str, Any]], bool] | None = None
    user_ids: frozenset[int] = frozenset()
    make: Callable[[HttpMessage], HttpMessage | None] | None = None
    seconds: float = 0.0  # how long "slow" holds the answer back
    status: int = 500  # the answer of "fail"
    code: str = "InternalServerError"
    hits: int = 0
    injected: list[HttpMessage] = field(default_factory=list)  # responses to injected requests

    def matches(self, operation: str, document: dict[str, Any]) -> bool:
        if self.operation is not None and operation != self.operation:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.user_ids and not self.user_ids & set(request_user_ids(document)):
            return False
        return self.when is None or self.when(document)


def _user_id_of(item: Any) -> list[int]:
    """The user id of an item or key (`{"user_id": {"N": ...}}`), as a list (empty when none)."""
    if isinstance(item, dict) and isinstance(item.get("user_id"), dict) and "N" in item["user_id"]:
        return [int(item["user_id"]["N"])]
    return []


def put_item_user_ids(document: dict[str, Any]) -> list[int]:
    """The user id of a PutItem body, as a list (empty when it has none)."""
    return _user_id_of(document.get("Item"))


def item_key_user_ids(document: dict[str, Any]) -> list[int]:
    """The user id of the Key of a GetItem, DeleteItem or UpdateItem body (empty when none)."""
    return _user_id_of(document.get("Key"))


def put_user_ids(document: dict[str, Any]) -> list[int]:
    """The user ids of the PutRequests of a BatchWriteItem body, in order."""
    return _batch_write_user_ids(document, "PutRequest", "Item")


def _batch_write_user_ids(document: dict[str, Any], kind: str, part: str) -> list[int]:
    ids: list[int] = []
    for requests in document.get("RequestItems", {}).values():
        if isinstance(requests, list):
            for request in requests:
                ids.extend(_user_id_of(request.get(kind, {}).get(part)))
    return ids


def key_user_ids(document: dict[str, Any]) -> list[int]:
    """The user ids of the Keys of a BatchGetItem body, in order."""
    ids: list[int] = []
    for request in document.get("RequestItems", {}).values():
        if isinstance(request, dict):
            for key in request.get("Keys", []):
                ids.extend(_user_id_of(key))
    return ids


def _statement_user_id(statement: dict[str, Any]) -> list[int]:
    """The user id of one PartiQL statement: the parameter at the `?` of `'user_id': ?` (an
    INSERT) or of `"user_id" = ?` (an UPDATE's WHERE)."""
    text = str(statement.get("Statement", ""))
    for marker in ("'user_id': ?", '"user_id" = ?'):
        at = text.find(marker)
        if at >= 0:
            value = statement.get("Parameters", [])[text[:at].count("?")]
            return [int(value["N"])] if "N" in value else []
    return []


def statement_user_ids(document: dict[str, Any]) -> list[int]:
    """The user ids of the statements of a BatchExecuteStatement body, in order."""
    return [user_id for statement in document.get("Statements", []) for user_id in _statement_user_id(statement)]


def request_user_ids(document: dict[str, Any]) -> list[int]:
    """Every user id a request body concerns, whatever its operation: the Item of a PutItem, the
    Key of a GetItem / DeleteItem / UpdateItem, the PutRequests and DeleteRequests of a
    BatchWriteItem, the Keys of a BatchGetItem. A Scan or a state-table request concerns none."""
    return [
        *put_item_user_ids(document),
        *item_key_user_ids(document),
        *put_user_ids(document),
        *_batch_write_user_ids(document, "DeleteRequest", "Key"),
        *key_user_ids(document),
        *statement_user_ids(document),
    ]


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------


class _Cut(Exception):
    """The byte budget of `cut_after` ran out on this chunk."""


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream connection(s), so they can be dropped at once."""

    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


class FaultProxy:
    """A TCP proxy on 127.0.0.1 with switchable faults; see the module docstring."""

    def __init__(self, target: tuple[str, int] | str, http: bool = False, name: str = "fault-proxy") -> None:
        self.target = target  # (host, port) or the path of a Unix socket
        self.http = http
        self.name = name
        self.port = 0
        # Faults (only ever changed on the proxy's loop).
        self._listening = False
        self._delay = 0.0
        self._blackhole = False
        self._budget: int | None = None
        self._rules: list[Rule] = []
        # What the proxy saw.
        self.operations: Counter[str] = Counter()
        self.arrivals: list[str] = []  # operations in the order their requests arrived
        self.in_flight: Counter[str] = Counter()  # requests arrived and not answered yet
        self.most_in_flight: Counter[str] = Counter()
        self.puts: Counter[int] = Counter()
        self.put_order: list[int] = []  # appended only (safe to read from the test's thread)
        self.statement_puts: list[int] = []  # the users of put_order written by PartiQL statements
        self.seen_user_ids: list[int] = []  # every user id of every request, as they arrive (appended only)
        self.deletes: Counter[int] = Counter()
        self.bytes_forwarded = 0
        self.connections = 0
        self.cuts = 0
        # Machinery.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=name, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- life cycle (called from the test's thread) --------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            if not self._loop.is_closed() and self._thread.ident is None:
                self._loop.close()  # never started
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- faults (called from the test's thread) ------------------------------------------

    def heal(self) -> None:
        """Plain pass-through again: every fault and every HTTP rule removed."""

        async def heal() -> None:
            swallowed = self._blackhole
            self._delay, self._blackhole, self._budget = 0.0, False, None
            self._rules.clear()
            if swallowed:
                # A connection that lost bytes to the blackhole cannot go on; its upstream side may
                # hold a server that answers one connection at a time (moto, serial) waiting for
                # them. Dropped, so the server and the client both see it end.
                await self._drop_all()
            await self._listen()

        self._call(heal())

    def refuse(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection."""
        self._call(self._refuse())

    def delay(self, seconds: float) -> None:
        """Hold every chunk the server sends back for `seconds` before passing it on."""
        self._set(_delay=seconds)

    def blackhole(self) -> None:
        """Accept connections but forward nothing either way: peers wait for ever."""
        self._set(_blackhole=True)

    def cut_after(self, n_bytes: int) -> None:
        """Forward `n_bytes` more bytes (both directions together), then drop every connection
        and refuse new ones, as if the server went away at that moment; `heal()` brings it back."""
        self._set(_budget=n_bytes)

    def drop_connections(self) -> None:
        """Drop every open connection (the server stays reachable)."""
        self._call(self._drop_all())

    def add_rule(self, rule: Rule) -> Rule:
        rule.user_ids = frozenset(rule.user_ids)

        async def add() -> None:
            self._rules.append(rule)

        self._call(add())
        return rule

    def throttle(self, operation: str | None = None, times: int | None = None, **match: Any) -> Rule:
        """Answer 400 ProvisionedThroughputExceededException instead of forwarding."""
        return self.add_rule(Rule("throttle", operation, times, **match))

    def fail(
        self,
        operation: str | None = None,
        times: int | None = None,
        status: int = 500,
        code: str = "InternalServerError",
        **match: Any,
    ) -> Rule:
        """Answer an error instead of forwarding: 500 InternalServerError by default (the SDK
        retries it), or e.g. `status=400, code="ValidationException"` (a refusal, not retried)."""
        return self.add_rule(Rule("fail", operation, times, status=status, code=code, **match))

    def unprocessed(
        self, user_ids: set[int] | frozenset[int], times: int | None = None, operation: str = "BatchWriteItem"
    ) -> Rule:
        """Leave these users out of the BatchWriteItem (or BatchGetItem) forwarded, and hand them
        back in the response's UnprocessedItems (UnprocessedKeys), as DynamoDB does when it cannot
        take part of a batch. PutItem has no such partial answer: see `fail` and `throttle`."""
        assert operation in ("BatchWriteItem", "BatchGetItem"), operation
        return self.add_rule(Rule("unprocessed", operation, times, user_ids=frozenset(user_ids)))

    def throttle_statements(self, user_ids: set[int] | frozenset[int], times: int | None = None) -> Rule:
        """Answer the statements of these users in a BatchExecuteStatement with `ThrottlingError`
        (not forwarded), the others as the server does: DynamoDB throttling part of a batch."""
        return self.add_rule(Rule("throttle_statements", "BatchExecuteStatement", times, user_ids=frozenset(user_ids)))

    def hangup(self, operation: str | None = None, times: int | None = None, **match: Any) -> Rule:
        """Close the client's connection without forwarding the request."""
        return self.add_rule(Rule("hangup", operation, times, **match))

    def lose_response(self, operation: str | None = None, times: int | None = None, **match: Any) -> Rule:
        """Forward the request (it takes effect), then close the client's connection unanswered."""
        return self.add_rule(Rule("lose_response", operation, times, **match))

    def slow(self, operation: str | None = None, seconds: float = 1.0, times: int | None = None, **match: Any) -> Rule:
        """Forward at once (the request takes effect), answer `seconds` later."""
        return self.add_rule(Rule("slow", operation, times, seconds=seconds, **match))

    def stall(
        self, operation: str | None = None, times: int | None = None, forward: bool = False, **match: Any
    ) -> Rule:
        """Never answer (the client times out); with `forward`, the request still takes effect."""
        return self.add_rule(Rule("stall_forwarded" if forward else "stall", operation, times, **match))

    def inject_before(
        self, operation: str, make: Callable[[HttpMessage], HttpMessage | None], times: int | None = 1, **match: Any
    ) -> Rule:
        """Before forwarding a matching request, send `make(request)` to the server (if not None)."""
        return self.add_rule(Rule("inject", operation, times, make=make, **match))

    # ---- internals ------------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def _set(self, **values: Any) -> None:
        async def assign() -> None:
            for name, value in values.items():
                setattr(self, name, value)

        self._call(assign())

    async def _listen(self) -> None:
        if self._listening:
            return
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._listening = True

    async def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()  # the listening socket closes now; the port stays ours to reuse
            self._server = None
        self._listening = False
        await self._drop_all()

    async def _drop_all(self) -> None:
        for link in list(self._links):
            link.abort()

    async def _shutdown(self) -> None:
        await self._refuse()
        # A connection accepted just before the refusal has its `_on_client` task queued, not started:
        # let it start (it closes its connection, the proxy no longer listening), and let every close
        # run to its end, before the loop stops; a transport left behind would be collected, unclosed,
        # in whatever test runs next (a ResourceWarning that failed one in CI).
        await self._let_callbacks_run()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._let_callbacks_run()

    @staticmethod
    async def _let_callbacks_run() -> None:
        # A connection accepted just before the refusal needs several turns of the loop before its
        # `_on_client` runs (the accept task, the transport's `connection_made`, the stream
        # protocol's task): 3 turns were not always enough on a loaded machine (the ResourceWarning
        # came back in a fresh-clone CI run), so a few more, then a moment for what the kernel holds.
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        for _ in range(5):
            await asyncio.sleep(0)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self.target, str):
            return await asyncio.open_unix_connection(self.target)
        return await asyncio.open_connection(*self.target)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._listening:
            # Accepted just before the proxy stopped listening (its task started after `_refuse`
            # dropped the links): dropped too, as refused, so no transport is left open.
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = _Link([writer])
        self._links.add(link)
        self.connections += 1
        try:
            if self.http:
                await self._serve_http(reader, link)
            else:
                up_reader, up_writer = await self._open_upstream()
                link.writers.append(up_writer)
                pumps = [
                    asyncio.create_task(self._pump(reader, up_writer, False)),
                    asyncio.create_task(self._pump(up_reader, writer, True)),
                ]
                try:
                    # Until both directions ended, or one failed (a cut, a reset).
                    await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
                finally:
                    for pump in pumps:
                        pump.cancel()
                    await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _Cut, ConnectionError):
            pass  # a dropped connection is what a fault proxy is for
        except asyncio.CancelledError:
            pass  # the proxy is closing; ending quietly keeps asyncio from logging the cancellation
        finally:
            link.abort()
            for each in link.writers:
                each.close()
            self._links.discard(link)
            self._tasks.discard(task)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, from_server: bool) -> None:
        """Every byte forwarded goes through here, so the byte-level faults apply to all of it."""
        if from_server and self._delay:
            await asyncio.sleep(self._delay)
        if self._blackhole:
            return  # dropped: the peer waits for an answer that never comes
        if self._budget is not None:
            if len(data) >= self._budget:
                # The server "goes away" in the middle of this chunk: what fits the budget
                # still reaches the peer, then every connection drops and new ones are refused.
                part, self._budget = data[: self._budget], None
                self.bytes_forwarded += len(part)
                self.cuts += 1
                with contextlib.suppress(OSError):
                    writer.write(part)
                    await writer.drain()
                await self._refuse()
                raise _Cut
            self._budget -= len(data)
        writer.write(data)
        self.bytes_forwarded += len(data)
        await writer.drain()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_server: bool) -> None:
        while data := await reader.read(CHUNK):
            await self._send(writer, data, from_server)
        # The peer finished sending: end this direction, so the other side sees it too.
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()

    # ---- HTTP -----------------------------------------------------------------------------

    def _rule_for(self, operation: str, document: dict[str, Any]) -> Rule | None:
        for rule in self._rules:
            if rule.matches(operation, document):
                rule.hits += 1
                return rule
        return None

    async def _serve_http(self, reader: asyncio.StreamReader, link: _Link) -> None:
        client = link.writers[0]
        while True:
            if self._blackhole:
                await reader.read()  # swallow everything until the client gives up
                return
            request = await read_message(reader, response=False)
            if request is None:
                return
            operation = request.operation
            document = request.json()
            self.seen_user_ids.extend(request_user_ids(document))
            self.operations[operation] += 1
            self.arrivals.append(operation)
            self.in_flight[operation] += 1
            self.most_in_flight[operation] = max(self.most_in_flight[operation], self.in_flight[operation])
            try:
                if not await self._answer(request, operation, document, reader, client, link):
                    return
            finally:
                self.in_flight[operation] -= 1

    async def _answer(
        self,
        request: HttpMessage,
        operation: str,
        document: dict[str, Any],
        reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        link: _Link,
    ) -> bool:
        """Apply the first matching rule to one request; False when the connection is done."""
        rule = self._rule_for(operation, document)
        action = rule.action if rule is not None else "forward"
        if action == "hangup":
            return False
        if action == "stall":
            await reader.read()  # never answered; wait for the client to give up
            return False
        if action == "throttle":
            response = dynamodb_response(
                400, {"__type": THROTTLING_TYPE, "message": "Rate of requests exceeds the allowed throughput."}
            )
        elif action == "fail":
            assert rule is not None
            response = dynamodb_response(
                rule.status, {"__type": ERROR_TYPE_PREFIX + rule.code, "message": "Injected by the fault proxy."}
            )
        elif action == "unprocessed" and operation == "BatchGetItem":
            assert rule is not None
            response = await self._unprocessed_keys(request, document, rule.user_ids, link)
        elif action == "unprocessed":
            assert rule is not None
            response = await self._unprocessed(request, document, rule.user_ids, link)
        elif action == "throttle_statements":
            assert rule is not None
            response = await self._throttled_statements(request, document, rule.user_ids, link)
        else:
            if action == "inject":
                assert rule is not None
                assert rule.make is not None
                extra = rule.make(request)
                if extra is not None:
                    rule.injected.append(await self._exchange(extra, link))
            response = await self._exchange(request, link)
            if action == "lose_response":
                return False
            if action == "stall_forwarded":
                await reader.read()
                return False
            if action == "slow":
                assert rule is not None
                await asyncio.sleep(rule.seconds)
        await self._send(client, response.encode("keep-alive"), True)
        return True

    async def _exchange(self, request: HttpMessage, link: _Link) -> HttpMessage:
        """Send one request upstream on a connection of its own; the whole response back."""
        if self._blackhole:
            # Never open an upstream connection that sends nothing: a single-threaded moto
            # would wait on it and stop serving everybody else.
            await asyncio.get_running_loop().create_future()
        up_reader, up_writer = await self._open_upstream()
        link.writers.append(up_writer)
        try:
            await self._send(up_writer, request.encode("close"), False)
            if request.operation == "BatchWriteItem":  # the whole request reached the server
                self._wrote(put_user_ids(request.json()))
            response = await read_message(up_reader, response=True)
            if response is None:
                raise ConnectionError("the server closed the connection without answering")
            if response.start_line.split(" ")[1:2] == ["200"]:
                # A conditional put or delete counts where it acted (a refused condition answers 400).
                if request.operation == "PutItem":
                    self._wrote(put_item_user_ids(request.json()))
                elif request.operation == "BatchExecuteStatement":  # each statement that succeeded wrote
                    answers = response.json().get("Responses", [])
                    statements = request.json().get("Statements", [])
                    written = [
                        user_id
                        for statement, answer in zip(statements, answers, strict=False)
                        if "Error" not in answer
                        for user_id in _statement_user_id(statement)
                    ]
                    self._wrote(written)
                    self.statement_puts.extend(written)
                elif request.operation == "DeleteItem":
                    self.deletes.update(item_key_user_ids(request.json()))
            # HTTP/1.0 from a single-threaded werkzeug: the client connection stays HTTP/1.1.
            response.start_line = "HTTP/1.1 " + response.start_line.split(" ", 1)[1]
            return response
        finally:
            link.writers.remove(up_writer)
            up_writer.close()

    def _wrote(self, user_ids: list[int]) -> None:
        self.puts.update(user_ids)
        self.put_order.extend(user_ids)

    async def _unprocessed_keys(
        self, request: HttpMessage, document: dict[str, Any], user_ids: frozenset[int], link: _Link
    ) -> HttpMessage:
        kept: dict[str, Any] = {}
        left: dict[str, Any] = {}
        for table, wanted in document.get("RequestItems", {}).items():
            for key in wanted.get("Keys", []):
                side = left if set(_user_id_of(key)) & user_ids else kept
                side.setdefault(table, {**wanted, "Keys": []})["Keys"].append(key)
        if not kept:
            return dynamodb_response(200, {"Responses": {table: [] for table in left}, "UnprocessedKeys": left})
        response = await self._exchange(request.with_json({**document, "RequestItems": kept}), link)
        if not response.start_line.startswith("HTTP/1.1 200"):
            return response
        answer = response.json()
        unprocessed = answer.setdefault("UnprocessedKeys", {})
        for table, wanted in left.items():
            unprocessed.setdefault(table, {**wanted, "Keys": []})["Keys"].extend(wanted["Keys"])
        return response.with_json(answer)

    async def _throttled_statements(
        self, request: HttpMessage, document: dict[str, Any], user_ids: frozenset[int], link: _Link
    ) -> HttpMessage:
        statements = document.get("Statements", [])
        throttled = [bool(set(_statement_user_id(statement)) & user_ids) for statement in statements]
        kept = [statement for statement, left in zip(statements, throttled, strict=True) if not left]
        error = {"Code": "ThrottlingError", "Message": "Throttled by the fault proxy."}
        answers: list[Any] = []
        if kept:
            response = await self._exchange(request.with_json({**document, "Statements": kept}), link)
            if not response.start_line.startswith("HTTP/1.1 200"):
                return response
            answers = list(response.json().get("Responses", []))
        else:
            response = dynamodb_response(200, {"Responses": []})
        merged = [{"Error": error} if left else answers.pop(0) for left in throttled]
        return response.with_json({**response.json(), "Responses": merged})

    async def _unprocessed(
        self, request: HttpMessage, document: dict[str, Any], user_ids: frozenset[int], link: _Link
    ) -> HttpMessage:
        kept: dict[str, list[Any]] = {}
        left: dict[str, list[Any]] = {}
        for table, requests in document.get("RequestItems", {}).items():
            for each in requests:
                item = each.get("PutRequest", {}).get("Item", {})
                user_id = int(item["user_id"]["N"]) if "user_id" in item else None
                (left if user_id in user_ids else kept).setdefault(table, []).append(each)
        if not kept:
            return dynamodb_response(200, {"UnprocessedItems": left})
        response = await self._exchange(request.with_json({**document, "RequestItems": kept}), link)
        if not response.start_line.startswith("HTTP/1.1 200"):
            return response
        answer = response.json()
        unprocessed = answer.setdefault("UnprocessedItems", {})
        for table, requests in left.items():
            unprocessed.setdefault(table, []).extend(requests)
        return response.with_json(answer)
