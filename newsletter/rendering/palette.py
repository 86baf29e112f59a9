"""Derive the theme's light and dark palettes from the publication's colours, and check contrast."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

from newsletter.config.settings import Colors

LIGHT_BACKGROUND = 0.4  # relative luminance from which a background reads as light (#aaa and up)


def _rgb(colour: str) -> tuple[float, float, float]:
    """Split ``#rgb`` or ``#rrggbb`` into channels from 0 to 1."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return tuple(int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _hex(rgb: tuple[float, float, float]) -> str:
    """Join channels from 0 to 1 into ``#rrggbb``."""
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def luminance(colour: str) -> float:
    """Return the WCAG relative luminance of a hex colour."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def is_light(colour: str) -> bool:
    """Tell whether a background colour reads as light, a bright patch on a dark page."""
    return luminance(colour) >= LIGHT_BACKGROUND


def contrast(first: str, second: str) -> float:
    """Return the WCAG contrast ratio between two hex colours (1 to 21)."""
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _mix(colour: str, other: str, share: float) -> str:
    """Blend ``share`` of ``other`` into ``colour``."""
    a, b = _rgb(colour), _rgb(other)
    return _hex(
        (
            a[0] + (b[0] - a[0]) * share,
            a[1] + (b[1] - a[1]) * share,
            a[2] + (b[2] - a[2]) * share,
        )
    )


def readable_on(background: str, colour: str, ratio: float) -> str:
    """Move ``colour`` towards white or black until it reaches ``ratio`` against ``background``."""
    target = "#ffffff" if luminance(background) < 0.18 else "#000000"
    for step in range(21):
        candidate = _mix(colour, target, step / 20)
        if contrast(candidate, background) >= ratio:
            return candidate
    return target


DARK_PAGE = "#0d1117"
DARK_SURFACE = "#161b22"
DARK_TEXT = "#e6edf3"
DARK_MUTED = "#a3adb8"
DARK_RULE = "#30363d"


@dataclass(frozen=True)
class Palette:
    """Every colour the theme uses, for light mode and for dark mode."""

    page: str
    surface: str
    text: str
    muted: str
    primary: str
    accent: str
    rule: str
    on_accent: str
    on_primary: str
    footer_muted: str
    dark_primary: str
    dark_accent: str
    dark_page: str = DARK_PAGE
    dark_surface: str = DARK_SURFACE
    dark_text: str = DARK_TEXT
    dark_muted: str = DARK_MUTED
    dark_rule: str = DARK_RULE


def _tint(colour: str, lightness: float) -> str:
    """Keep the hue of ``colour`` at a new lightness (0 to 1)."""
    hue, _, saturation = colorsys.rgb_to_hls(*_rgb(colour))
    return _hex(colorsys.hls_to_rgb(hue, lightness, saturation))


def palette(colors: Colors) -> Palette:
    """Derive the light and dark palettes from the publication's colours."""
    on_accent = max(("#ffffff", "#000000"), key=lambda c: contrast(c, colors.accent))
    on_primary = max(("#ffffff", "#000000"), key=lambda c: contrast(c, colors.primary))
    return Palette(
        page=colors.background,
        surface=colors.surface,
        text=colors.text,
        muted=colors.muted,
        primary=colors.primary,
        accent=colors.accent,
        rule=_mix(colors.surface, colors.text, 0.14),
        on_accent=on_accent,
        on_primary=on_primary,
        footer_muted=readable_on(colors.primary, _mix(on_primary, colors.primary, 0.25), 4.5),
        dark_primary=readable_on(DARK_SURFACE, _tint(colors.primary, 0.78), 7.0),
        dark_accent=readable_on(DARK_SURFACE, _tint(colors.accent, 0.72), 4.5),
    )


def colour_warnings(colors: Colors) -> list[str]:
    """Name every theme colour pair whose contrast is below WCAG AA for text."""
    pairs = (
        ("text", colors.text, "surface", colors.surface),
        ("muted", colors.muted, "surface", colors.surface),
        ("primary", colors.primary, "surface", colors.surface),
        ("accent", colors.accent, "surface", colors.surface),
    )
    found = []
    for name, fg, bg_name, bg in pairs:
        ratio = contrast(fg, bg)
        if ratio < 4.5:
            found.append(
                f"publication.colors: {name} {fg} on {bg_name} {bg} has contrast "
                f"{ratio:.1f}:1; text needs at least 4.5:1 (choose a darker {name})"
            )
    return found
