"""Who may use the platform's API: scopes, hashed tokens, browser sessions, the failed-attempt limiter.

A service room: nothing here imports aiohttp, so the same catalog serves the web middleware
(`plantwire_platform.web.auth_middleware`), the token CLI and the demo. The threat model these
pieces answer is in docs/security.md.
"""
