"""Categories to sections and regions: the publication's own map on top of sensible defaults.

Terms match case-insensitively with spaces folded; ``News/World/Asia`` style paths
are also tried part by part. Sections come out lower-case, regions display-cased.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from newsletter.config.settings import Settings

_SECTION_WORDS: dict[str, tuple[str, ...]] = {
    "news": (
        "news",
        "latest",
        "latest news",
        "breaking",
        "breaking news",
        "top stories",
        "top story",
        "headlines",
        "world news",
        "national news",
        "local news",
    ),
    "opinion": (
        "opinion",
        "opinions",
        "op-ed",
        "op-eds",
        "oped",
        "op ed",
        "editorial",
        "editorials",
        "commentary",
        "comment",
        "comments and opinion",
        "column",
        "columns",
        "columnist",
        "columnists",
        "views",
        "viewpoint",
        "viewpoints",
        "perspective",
        "perspectives",
        "letters",
        "letters to the editor",
    ),
    "blog": ("blog", "blogs", "blog post", "weblog", "live blog", "liveblog"),
    "interview": ("interview", "interviews", "q&a", "q & a", "in conversation", "conversation"),
    "analysis": ("analysis", "news analysis", "explainer", "explainers", "explained", "insight"),
}

_GLOBAL = ("world", "global", "international", "worldwide", "the world")

_REGION_ALIASES: dict[str, tuple[str, ...]] = {
    "Global": _GLOBAL,
    "United States": (
        "us",
        "u.s.",
        "usa",
        "u.s.a.",
        "united states",
        "united states of america",
        "america",
        "the united states",
        "the us",
    ),
    "United Kingdom": (
        "uk",
        "u.k.",
        "united kingdom",
        "britain",
        "great britain",
        "gb",
        "the uk",
    ),
    "United Arab Emirates": ("uae", "u.a.e.", "united arab emirates", "emirates"),
    "European Union": ("eu", "e.u.", "european union"),
    "South Korea": ("south korea", "korea", "republic of korea", "korea, republic of"),
    "North Korea": ("north korea", "dprk"),
    "China": ("china", "prc", "people's republic of china", "mainland china"),
    "Russia": ("russia", "russian federation"),
    "Czechia": ("czechia", "czech republic"),
    "Netherlands": ("netherlands", "the netherlands", "holland"),
    "Democratic Republic of the Congo": ("dr congo", "drc", "democratic republic of the congo"),
    "Republic of the Congo": ("republic of the congo", "congo-brazzaville"),
    "Ivory Coast": ("ivory coast", "côte d'ivoire", "cote d'ivoire"),
    "Myanmar": ("myanmar", "burma"),
    "Eswatini": ("eswatini", "swaziland"),
    "Türkiye": ("türkiye", "turkiye", "turkey"),
    "Vatican City": ("vatican", "vatican city", "holy see"),
    "Middle East": ("middle east", "mideast", "mena"),
    "Asia-Pacific": ("asia-pacific", "asia pacific", "apac"),
    "Latin America": ("latin america", "latam"),
    "North America": ("north america",),
    "South America": ("south america",),
    "Central America": ("central america",),
    "Caribbean": ("caribbean", "the caribbean"),
    "Europe": ("europe",),
    "Asia": ("asia",),
    "Africa": ("africa",),
    "Oceania": ("oceania",),
    "Antarctica": ("antarctica",),
    "South Asia": ("south asia",),
    "Southeast Asia": ("southeast asia", "south-east asia", "south east asia"),
    "East Asia": ("east asia",),
    "Central Asia": ("central asia",),
    "Sub-Saharan Africa": ("sub-saharan africa",),
    "Hong Kong": ("hong kong", "hk"),
    "New Zealand": ("new zealand", "nz"),
}

_COUNTRIES = """
Afghanistan Albania Algeria Andorra Angola Argentina Armenia Australia Austria Azerbaijan
Bahamas Bahrain Bangladesh Barbados Belarus Belgium Belize Benin Bhutan Bolivia
Bosnia_and_Herzegovina Botswana Brazil Brunei Bulgaria Burkina_Faso Burundi Cambodia Cameroon
Canada Cape_Verde Chad Chile Colombia Comoros Costa_Rica Croatia Cuba Cyprus Denmark Djibouti
Dominica Dominican_Republic Ecuador Egypt El_Salvador England Equatorial_Guinea Eritrea Estonia
Ethiopia Fiji Finland France Gabon Gambia Georgia Germany Ghana Greece Grenada Guatemala Guinea
Guinea-Bissau Guyana Haiti Honduras Hungary Iceland India Indonesia Iran Iraq Ireland Israel
Italy Jamaica Japan Jordan Kazakhstan Kenya Kiribati Kosovo Kuwait Kyrgyzstan Laos Latvia
Lebanon Lesotho Liberia Libya Liechtenstein Lithuania Luxembourg Macau Madagascar Malawi Malaysia
Maldives Mali Malta Mauritania Mauritius Mexico Micronesia Moldova Monaco Mongolia Montenegro
Morocco Mozambique Namibia Nauru Nepal Nicaragua Niger Nigeria North_Macedonia Northern_Ireland
Norway Oman Pakistan Palau Palestine Panama Papua_New_Guinea Paraguay Peru Philippines Poland
Portugal Puerto_Rico Qatar Romania Rwanda Samoa San_Marino Saudi_Arabia Scotland Senegal Serbia
Seychelles Sierra_Leone Singapore Slovakia Slovenia Somalia South_Africa South_Sudan Spain
Sri_Lanka Sudan Suriname Sweden Switzerland Syria Taiwan Tajikistan Tanzania Thailand Timor-Leste
Togo Tonga Trinidad_and_Tobago Tunisia Turkmenistan Tuvalu Uganda Ukraine Uruguay Uzbekistan
Vanuatu Venezuela Vietnam Wales Yemen Zambia Zimbabwe
"""

_PATH_SPLIT = re.compile(r"\s*[/>|»:]\s*")
_SPACE = re.compile(r"\s+")


def _key(term: str) -> str:
    return _SPACE.sub(" ", term.replace("_", " ")).strip().casefold()


def _default_sections() -> dict[str, str]:
    return {_key(word): section for section, words in _SECTION_WORDS.items() for word in words}


def _default_regions() -> dict[str, str]:
    table = {_key(name): name.replace("_", " ") for name in _COUNTRIES.split()}
    for name, aliases in _REGION_ALIASES.items():
        table[_key(name)] = name
        table.update({_key(alias): name for alias in aliases})
    return table


def display_region(value: str) -> str:
    """Display-case a region nobody mapped: ``new york`` → ``New York``; others as given."""
    text = _SPACE.sub(" ", value).strip()
    return string.capwords(text) if text == text.lower() else text


@dataclass(frozen=True)
class Classified:
    """What a list of category terms says about an item."""

    section: str | None
    regions: tuple[str, ...]
    tags: tuple[str, ...]


class Mapper:
    """Maps category terms to sections and regions (the publication's map wins)."""

    def __init__(
        self,
        section_map: Mapping[str, str] | None = None,
        region_map: Mapping[str, str] | None = None,
    ) -> None:
        self._sections = _default_sections()
        own_sections = section_map or {}
        self._sections.update({_key(k): v.strip().casefold() for k, v in own_sections.items()})
        self._regions = _default_regions()
        self._regions.update({_key(k): v.strip() for k, v in (region_map or {}).items()})

    @classmethod
    def from_settings(cls, settings: Settings) -> Mapper:
        """Build the mapper for a publication's ``[sections]`` and ``[regions]`` tables."""
        return cls(settings.section_map, settings.region_map)

    def _lookup(self, table: Mapping[str, str], term: str) -> str | None:
        key = _key(term)
        if not key:
            return None
        if key in table:
            return table[key]
        for part in reversed(_PATH_SPLIT.split(key)):
            if part in table:
                return table[part]
        return None

    def section(self, term: str) -> str | None:
        """The section a term names, or ``None`` if it names none."""
        return self._lookup(self._sections, term)

    def region(self, term: str) -> str | None:
        """The region a term names, or ``None`` if it names none."""
        return self._lookup(self._regions, term)

    def section_value(self, value: str) -> str:
        """Normalize an explicit section value: a known name, else the value lower-cased."""
        return self.section(value) or _key(value)

    def region_value(self, value: str) -> str:
        """Normalize an explicit region value: a known name, else the value display-cased."""
        return self.region(value) or display_region(value)

    def classify(self, terms: Iterable[str]) -> Classified:
        """Sort category terms into a section, regions and leftover tags.

        When terms name several sections, the first one other than ``news`` wins:
        many sites tag every story "News" as well as "Opinion".
        """
        sections: list[str] = []
        regions: list[str] = []
        tags: list[str] = []
        for term in terms:
            section = self.section(term)
            region = self.region(term)
            if section:
                sections.append(section)
            if region and region not in regions:
                regions.append(region)
            if not section and not region:
                text = _SPACE.sub(" ", term).strip()
                if text and text.casefold() not in {t.casefold() for t in tags}:
                    tags.append(text)
        special = [s for s in sections if s != "news"]
        chosen = special[0] if special else (sections[0] if sections else None)
        return Classified(chosen, tuple(regions), tuple(tags))
