"""Sending an edition: the plan, the gate, the locks, one sender or several, giving up."""
