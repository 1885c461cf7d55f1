"""The oee app (see manifest.toml and app.py)."""
