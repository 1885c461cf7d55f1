"""The energy app (see manifest.toml and app.py)."""
