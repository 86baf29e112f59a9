"""Bounces and complaints: read a mailbox, parse the reports, suppress and mark the ledger."""
