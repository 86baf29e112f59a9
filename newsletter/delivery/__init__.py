"""Delivery: hand finished messages to files (dry run) or to an SMTP relay."""
