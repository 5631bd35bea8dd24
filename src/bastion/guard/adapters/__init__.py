"""Ways to put the guard in front of a model: in-process, ASGI middleware, reverse proxy."""
