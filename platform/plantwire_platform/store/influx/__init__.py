"""The InfluxDB 2 backend: points in InfluxDB, its catalog in a local SQLite file."""
