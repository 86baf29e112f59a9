"""The preview page: its HTML builder and its own stylesheet and script."""
