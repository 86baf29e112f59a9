"""Text out of a parsed message, whatever its parts' encodings and character sets claim."""

from __future__ import annotations

from email.message import Message


def part_text(part: Message) -> str:
    """A non-multipart part's text: transfer encoding undone, an unknown charset read as UTF-8."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    inner = part.get_payload()
    if isinstance(inner, list):  # a message/* part parsed into header blocks
        return "\n".join(
            "".join(f"{key}: {value}\n" for key, value in block.items())
            for block in inner
            if isinstance(block, Message)
        )
    return str(inner or "")


def plain_text(message: Message) -> str:
    """Every ``text/plain`` part of ``message`` (outside attached messages), joined."""
    texts: list[str] = []
    _collect(message, texts)
    return "\n".join(texts)


def _collect(part: Message, texts: list[str]) -> None:
    if part.get_content_maintype() == "message":
        return
    if part.is_multipart():
        for inner in part.get_payload():
            if isinstance(inner, Message):
                _collect(inner, texts)
    elif part.get_content_type() == "text/plain":
        texts.append(part_text(part))
