"""The web layer: a thin skin over the services (routes, errors, stream, health, OpenAPI, page)."""
