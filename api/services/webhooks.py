"""The job spec's webhook on the API side: the URL check at submit, hiding the secret."""

from typing import Any

from api.errors import Invalid, detail
from models.settings import Settings
from models.spec import JobSpec
from models.webhook_url import UnsafeUrl, check_url


def check_webhook(spec: JobSpec, settings: Settings) -> None:
    """Refuse a webhook URL the service must not call (see ``models.webhook_url``)."""
    if spec.webhook is None:
        return
    try:
        check_url(spec.webhook.url, allow_private=settings.webhook_allow_private)
    except UnsafeUrl as exc:
        raise Invalid(f"the webhook URL is refused: {exc}", [detail(("webhook", "url"), str(exc))]) from exc


def public_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the API shows it: without the webhook secret.

    Left out rather than masked, so a spec copied from a response and submitted
    again fails with "webhook.secret: Field required" instead of signing with
    a row of asterisks.
    """
    webhook = spec.get("webhook")
    if not webhook or "secret" not in webhook:
        return spec
    return {**spec, "webhook": {key: value for key, value in webhook.items() if key != "secret"}}
