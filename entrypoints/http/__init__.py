"""The HTTP room: the aiohttp app, its routes (one table), middlewares, auth, metrics and probes, and `serve`."""
