"""The state file: history, stored editions, the delivery ledger and schedule slots."""
