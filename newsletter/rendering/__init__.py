"""Rendering: the palette, the story view models, the text-part helpers and the renderer."""
