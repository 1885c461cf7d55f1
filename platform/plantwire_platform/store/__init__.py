"""Storage: the TimeSeries and Catalog protocols, the SQLite and InfluxDB backends (docs/architecture.md)."""
