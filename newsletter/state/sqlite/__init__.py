"""The SQLite backend: one state file per state folder, in WAL mode."""
