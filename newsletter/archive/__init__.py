"""The archive of sent editions: each edition as an anonymous reader sees it, an index, a feed."""
