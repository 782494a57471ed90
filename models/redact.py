"""URLs as they may appear in a log line or a stored error message.

A webhook URL often carries its receiver's credentials (``https://user:pass@…``)
or a token in its query (``?token=…``); a database or broker DSN carries a
password. Logs are read by more people than the ones who may call the receiver,
so anything logged or stored shows a URL as ``scheme://host:port/path`` only:
no userinfo, no query, no fragment.

Plain standard library: the API, the worker and the CLI all use it.
"""

import re
from urllib.parse import urlsplit

# scheme://anything up to whitespace or a quote (as URLs appear inside exception texts and repr()s)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def redact_url(url: object) -> str:
    """``url`` (a string, ``httpx.URL``, ...) reduced to ``scheme://host[:port]/path``."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<a URL that does not parse>"
    if not parts.scheme or not parts.netloc:
        return "<a URL that does not parse>"
    shown = f"[{host}]" if host and ":" in host else (host or "")
    if port is not None:
        shown += f":{port}"
    return f"{parts.scheme}://{shown}{parts.path}"


def redact_urls_in(text: str) -> str:
    """``text`` with every URL in it redacted (exception messages, log messages)."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
