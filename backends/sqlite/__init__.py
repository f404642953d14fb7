"""The SQLite backend: a durable history file (the default), served by one process."""

from .store import DB_FILE_NAME, SQLiteStore

__all__ = ["DB_FILE_NAME", "SQLiteStore"]
