"""The PostgreSQL backend (asyncpg): partitioned points, COPY bulk writes, safe for many writers."""
