"""Identifier resolution: Handle-System identifiers (RFC 3650-3652) for gateways, devices and parts.

A service room: no aiohttp `web` here. `handle` is the data model, `suffixes` the naming rule,
`templates` the per-class value templates, `catalog` the SQLite store with a hot cache, `registry`
what the platform and apps call to mint, `resolver` local-then-upstream resolution and
`upstream_sync` registration at a second-level node. See docs/identifiers.md.
"""
