"""Commands to devices: one service with typed errors, used by REST and apps alike (docs/architecture.md)."""
