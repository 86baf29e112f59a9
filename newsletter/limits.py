"""Limits the outside world sets on an email: mail clients and the SMTP standards.

Every module that measures a message against one of these imports it from here.
"""

from __future__ import annotations

HTML_CLIP_BYTES = 102_000  # Gmail clips a message whose HTML passes about 102 KB
HTML_WARN_BYTES = 80_000  # warn well before the clip: content grows between builds
MAX_LINE_OCTETS = 998  # RFC 5322 2.1.1: a line, without its CRLF
LOCAL_PART_MAX_OCTETS = 64  # RFC 5321 4.5.3.1.1: the part before the @-sign
ADDRESS_MAX_OCTETS = 254  # RFC 5321 4.5.3.1.3: a path of 256 octets, less its angle brackets
