"""The local preview: the edition as one subscriber gets it, rebuilt when files change."""
