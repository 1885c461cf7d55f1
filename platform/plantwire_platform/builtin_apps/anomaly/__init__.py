"""The anomaly app (see manifest.toml and app.py)."""
