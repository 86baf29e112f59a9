"""The state: history, stored editions, delivery ledger, schedule slots; SQLite or PostgreSQL."""
