"""Plantwire platform: MQTT ingest, time-series store, REST API and app host."""
