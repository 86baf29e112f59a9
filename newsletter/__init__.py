"""Build an email digest from a publication's news content and deliver it."""

__version__ = "0.1.0"
