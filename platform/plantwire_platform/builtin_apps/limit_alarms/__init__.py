"""The limit_alarms app (see manifest.toml and app.py)."""
