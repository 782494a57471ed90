"""A job spec's (or a sweep request's) webhook on the API side: the URL check at submit. (Its secret is
left out of every response by ``api.schemas.jobs.public_spec``.)"""

from api.errors import Invalid, detail
from models.settings import Settings
from models.spec import WebhookSpec
from models.webhook_url import UnsafeUrl, check_url


def check_webhook(webhook: WebhookSpec | None, settings: Settings) -> None:
    """Refuse a webhook URL the service must not call (see ``models.webhook_url``): 422 at ``webhook.url``."""
    if webhook is None:
        return
    try:
        check_url(webhook.url, allow_private=settings.webhook_allow_private)
    except UnsafeUrl as exc:
        raise Invalid(f"the webhook URL is refused: {exc}", [detail(("webhook", "url"), str(exc))]) from exc

