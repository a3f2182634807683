"""Local PostgreSQL and DynamoDB servers started by the project itself, for tests and the demo.

PostgreSQL comes from the `pgserver` package (PostgreSQL inside a wheel); DynamoDB is moto in
server mode, in its own process, spoken to over HTTP. Both packages are imported only here, and
only when a server is started, so the service itself never needs them.
"""

from __future__ import annotations

import gc
import io
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import attrs


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, server: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedServerError(f"{server} exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise EmbeddedServerError(f"{server} did not listen on port {port} within {timeout:.0f}s")


@attrs.define
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`."""

    data_dir: Path
    _server: Any = None

    @property
    def dsn(self) -> str:
        """A `postgresql://` URL for this server."""
        assert self._server is not None, "server not started"
        return str(self._server.get_uri())

    def start(self, settings: dict[str, str] | None = None) -> EmbeddedPostgres:
        """Start (or reuse) the server on `data_dir`; `settings` (e.g. `{"wal_level": "logical"}`)
        are written with ALTER SYSTEM and the server restarted to take them."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (as on CI machines); harmless here.
            warnings.simplefilter("ignore")
            import pgserver

            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
            except Exception as error:
                raise EmbeddedServerError(f"could not start PostgreSQL in {self.data_dir}: {error}") from error
        if settings:
            self._configure(settings)
        return self

    def _configure(self, settings: dict[str, str]) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        for name, value in settings.items():
            quoted = value.replace("'", "''")
            self._server.psql(f"ALTER SYSTEM SET {name} = '{quoted}';")
        try:  # pg_ctl restart keeps the options pgserver started it with (postmaster.opts)
            pg_ctl(["-w", "restart"], pgdata=self._server.pgdata, user=self._server.system_user, timeout=60)
        except Exception as error:
            message = f"PostgreSQL in {self.data_dir} did not restart with {settings}: {error}"
            raise EmbeddedServerError(message) from error
        # pgserver stops the postmaster it knows on cleanup: the restarted one has another pid.
        from pgserver.utils import PostmasterInfo

        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self._server.pgdata)

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@attrs.define
class EmbeddedDynamoDb:
    """moto's DynamoDB in server mode, in a child process on a loopback port."""

    port: int = attrs.Factory(free_port)
    # One request at a time: moto's UpdateItem is a read-modify-write without a lock, so a
    # threaded server loses concurrent ADDs to one item, which real DynamoDB applies atomically.
    serial: bool = True
    _process: subprocess.Popen[bytes] | None = None
    # What the server is called in messages (a subclass runs another DynamoDB implementation).
    server: ClassVar[str] = "moto server"

    @property
    def endpoint_url(self) -> str:
        """The HTTP endpoint to give to a DynamoDB client."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id; None when it is not started."""
        return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        """The server's command line."""
        if self.serial:
            return [sys.executable, "-m", "user_migration.entrypoints.demo.embedded", str(self.port)]
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self, timeout: float = 60.0) -> EmbeddedDynamoDb:
        """Start the server and wait until it accepts connections."""
        self._process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port(self.port, self._process, timeout, self.server)
        except EmbeddedServerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and reap its process."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def serve_moto_serially(port: int) -> None:
    """moto's DynamoDB on loopback, handling one request at a time (see `EmbeddedDynamoDb.serial`).

    An aiohttp server on one event loop, whose handler calls moto synchronously (so one request at
    a time, and connections kept alive between requests, where werkzeug's one-threaded server closes
    each). A DynamoDB request goes straight to moto's `DynamoHandler`, as moto's own Flask view sends
    it, without moto's dispatcher (which finds the service among all of moto's by the request's host
    and signature) and Flask around it: the same answers, status and headers (but CORS', which no
    DynamoDB client reads; `tests/integration/test_embedded_dynamodb.py` compares them with moto's own
    server). The server's CPU for 1,500 conditional puts and 15 batch reads: 4.5 CPU-s behind moto's
    dispatcher and werkzeug, 2.9 without the dispatcher, 1.7 to 2.2 on aiohttp (the client's 1.5 to
    1.9 against 1.9 to 3.1, its connections kept). Only moto's own `/moto-api/` goes through its
    dispatcher; other AWS services are not served."""
    from aiohttp import web

    application = _moto_application()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = [status, headers]

        content = application(_environ_of(request, body, port), start_response)
        status, headers = started
        kept = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
        return web.Response(body=content, status=int(status.split(" ", 1)[0]), headers=kept)

    app = web.Application(client_max_size=_LARGEST_REQUEST)
    app.router.add_route("*", "/{tail:.*}", handle)
    # moto allocates many short-lived objects per request and keeps every item: with the default
    # thresholds its collector ran often over the whole table (a ceiling run of 20,000 items:
    # ~2,650 -> ~3,000 writes/s with these, medians of 6; +2 MB).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=1)


# Set by the server for its own connection, not by moto's answer.
_HOP_BY_HOP = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})
# DynamoDB's largest request is a BatchWriteItem of 25 items of 400 KB (about 10 MB).
_LARGEST_REQUEST = 32 * 1024 * 1024


def _moto_application() -> Callable[[dict[str, Any], Any], bytes]:
    """A WSGI application whose answer is read whole (before moto's model data is dropped): DynamoDB's
    requests straight to moto's handler, `/moto-api/` to its dispatcher."""
    from botocore.exceptions import ClientError
    from moto.core.model_instances import reset_model_data
    from moto.core.request import Request
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.wrappers import Response

    dispatcher = DomainDispatcherApplication(create_backend_app)
    _statements_see_their_own_tables()
    _answers_pick_their_values_by_known_keys()

    class ServerRequest(Request):
        from_wsgi_server = True  # as moto's server marks its requests (`BackendRequest`)

    def answer(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = ServerRequest(environ)
        try:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as error:  # as moto's Flask view (`convert_to_flask_response`) answers it
            result = 400, {}, error.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        response: Iterable[bytes] = Response(response=content, status=status, headers=headers)(environ, start_response)
        return response

    def application(environ: dict[str, Any], start_response: Any) -> bytes:
        try:
            served = dispatcher if str(environ["PATH_INFO"]).startswith("/moto-api") else answer
            return b"".join(served(environ, start_response))
        finally:
            # moto keeps every model object it ever made (every item written, deleted tables'
            # included) for its dashboard, which is never used here: without this, a long run
            # grows by ~3.7 KB per item written and slows down as its heap grows.
            reset_model_data()

    return application


def _statements_see_their_own_tables() -> None:
    """moto runs a PartiQL statement over a copy, as JSON, of every item of every table it holds (it does
    not look for the statement's tables first): in a server that lives as long as a test session, with
    thousands of tables, each statement cost more than every other request (a third of its CPU in the test
    suite, nearly all of it from the project's one probe of PartiQL support per process and table). Here
    a statement is run over the tables whose names are in its text: every table it can name, so the same
    answer (compared with moto's own server in tests/integration/test_embedded_dynamodb.py)."""
    from moto.dynamodb.models import DynamoDBBackend

    run_over_every_table = DynamoDBBackend.execute_statement

    def execute_statement(self: Any, statement: str, parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        every_table = self.tables
        self.tables = type(every_table)((name, table) for name, table in every_table.items() if name in statement)
        try:
            return run_over_every_table(self, statement, parameters)
        finally:
            self.tables = every_table

    DynamoDBBackend.execute_statement = execute_statement  # type: ignore[method-assign]


def _answers_pick_their_values_by_known_keys() -> None:
    """moto writes every answer by walking the operation's output shape, and looks up each member of each
    structure through a chain of alias providers (the member's name, its snake_case form, the shape's name,
    prefixes of the parent's and the object's class name...), built anew for every member of every attribute
    value of every item: a quarter of the server's CPU in the test suite (py-spy, 53 tests). For a plain dict,
    which is what moto's DynamoDB answers are made of, those keys depend only on the member's shape, its
    parent and its name; here they are worked out once, by the same providers, and tried in the same order.
    Anything but a plain dict, or a picker that transforms values, goes through moto's own lookup."""
    from moto.core.serialize import AttributePickerContext, ResponseSerializer, XFormedAttributePicker
    from moto.core.utils import MISSING, get_value  # type: ignore[attr-defined]

    pick_by_providers = ResponseSerializer.get_value
    keys_of: dict[tuple[Any, Any, str], tuple[str, ...]] = {}  # keeps the shapes it is keyed by alive

    def pick(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        if type(value) is not dict or type(picker) is not XFormedAttributePicker or picker.response_transformers:
            return pick_by_providers(self, value, key, shape)
        cached = (shape, getattr(shape, "parent", None), key)
        keys = keys_of.get(cached)
        if keys is None:
            context = AttributePickerContext(obj={}, key=key, shape=shape, operation_model=self.operation_model)
            keys = keys_of[cached] = tuple(picker.get_possible_keys(context))
        for possible_key in keys:
            # moto's get_value reads a dotted key as a path; no shape's name has a dot, but it decides if one did.
            found = (
                value.get(possible_key, MISSING) if "." not in possible_key else get_value(value, possible_key, MISSING)
            )
            if found is not MISSING:
                return found
        return None

    ResponseSerializer.get_value = pick  # type: ignore[method-assign]


def _environ_of(request: Any, body: bytes, port: int) -> dict[str, Any]:
    """The WSGI environ of an aiohttp request whose body was read."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query_string,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers.items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ[key] = value
        elif key != "CONTENT_LENGTH":
            environ[f"HTTP_{key}"] = value
    return environ


if __name__ == "__main__":
    serve_moto_serially(int(sys.argv[1]))
