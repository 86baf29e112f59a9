"""Settings: their types, and the loader that reads them from the config file and environment."""
