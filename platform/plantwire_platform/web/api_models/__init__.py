"""The REST API's request and response models: one source for the web layer's parsing and the OpenAPI
document (`web.openapi` turns them into JSON Schema; `web.request_models` validates requests with
them)."""
