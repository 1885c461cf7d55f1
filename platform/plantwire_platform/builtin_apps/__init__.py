"""Apps shipped with the platform; each folder has the shape of any app (manifest.toml + app.py)."""
