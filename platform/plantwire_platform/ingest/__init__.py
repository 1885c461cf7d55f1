"""Ingest: MQTT in, committed store writes out, the live bus of committed points (docs/architecture.md)."""
