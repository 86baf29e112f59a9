"""The PostgreSQL backend: the state shared by every sender that reaches the database."""
