"""Secrets in query strings never reach the access log.

uvicorn's access log prints each request's path with its query string, where a
stream token travels (``/v1/jobs/{id}/events?token=...``, for EventSource). This
filter masks the value of every query parameter whose name says token, key, secret
or password, before any handler formats the line. ``create_app`` installs it on the
``uvicorn.access`` logger, so every way of serving the app (``trainyard serve``,
``uvicorn --factory``) gets it, after uvicorn has configured its logging.
"""

import logging
import re

MASK = "***"
SECRET_PARAMETER = re.compile(r"([?&][^=&#]*(?:token|key|secret|password)[^=&#]*=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(rf"\g<1>{MASK}", text)


class RedactQuerySecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, RedactQuerySecrets) for existing in logger.filters):
        logger.addFilter(RedactQuerySecrets())
