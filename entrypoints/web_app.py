"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from container import Container, build_container, resolve
from entrypoints.settings import Settings
from entrypoints.web_handlers import setup_routes
from entrypoints.web_keys import CONTAINER, MIGRATION
from entrypoints.web_middlewares import setup_middlewares


def _lifecycle(container: Container) -> Callable[[web.Application], AsyncIterator[None]]:
    async def migration_lifecycle(app: web.Application) -> AsyncIterator[None]:
        # Resolving the use case creates the pool and the DynamoDB client (lazily initialised
        # resources); shutting the container down closes them.
        app[MIGRATION] = await resolve(container.migration())
        try:
            yield
        finally:
            await resolve(container.shutdown_resources())

    return migration_lifecycle


async def init_app(settings: Settings, container: Container | None = None) -> web.Application:
    """The web application; tests call it directly: `aiohttp_client(await init_app(settings))`.

    `container` defaults to one built from `settings`; pass one with overridden ports to run the
    API on other adapters (see `entrypoints.harness`).
    """
    if container is None:
        container = build_container(settings.container_config())
    # Headers up to 64 KiB reach the auth middleware and get its JSON 401, instead of the
    # parser's plain 400 (which would also log the start of the header: a token, perhaps).
    app = web.Application(client_max_size=64 * 1024, handler_args={"max_field_size": 64 * 1024})
    app[CONTAINER] = container
    setup_middlewares(app, settings.api_tokens)
    setup_routes(app)
    app.cleanup_ctx.append(_lifecycle(container))
    return app
