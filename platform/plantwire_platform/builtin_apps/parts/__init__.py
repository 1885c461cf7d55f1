"""The parts app (see manifest.toml and app.py)."""
