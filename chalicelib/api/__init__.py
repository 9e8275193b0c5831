"""The HTTP side: the REST handlers ``app.py`` routes to, and the OpenAPI document.

- ``rest``: one function per route; ``http``: reading requests, answers and errors;
- ``runtime``: building the service per request, background runs, the local ticker;
- ``openapi``: ``GET /openapi.json``; ``authorization``: who may call which route;
- ``fallback``: 405 for a method a path lacks, 404 for an unknown path;
- ``admission``: what every request must be first: a stage fit to serve, HTTP's header bytes, a trusted host.

May import anything in ``chalicelib``; nothing in ``chalicelib`` imports it
(``app.py`` and the command line sit above it).
"""
