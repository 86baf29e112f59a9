"""The public service (unsubscribe, subscribe, archive) and the local preview, on Starlette."""
