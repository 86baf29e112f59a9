"""Live delivery over SMTP: settings checks, connections, transactions and the sending pool."""
