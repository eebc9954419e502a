"""The request hot path on the raw drivers (stdlib sqlite3, psycopg 3)."""
