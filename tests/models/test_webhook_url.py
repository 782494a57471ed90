"""Which webhook URLs the service may call: public addresses only, unless the operator allows others."""

import socket

import pytest

from models.spec import DEFAULT_WEBHOOK_EVENTS, JobSpec, WebhookEvent
from models.enums import EventType
from models.webhook_url import UnsafeUrl, check_url
from tests.specs import IRIS_MLP, spec


def fake_dns(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]
    return resolve


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one number
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped IPv6
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),  # the cloud metadata service
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://100.64.0.1/hook", "non-public"),
])
def test_non_public_addresses_are_refused(url, reason):
    with pytest.raises(UnsafeUrl, match=f"a {reason} address"):
        check_url(url, allow_private=False)


def test_a_name_that_resolves_to_a_private_address_is_refused_even_beside_a_public_one():
    dns = fake_dns({"rebind.example": ["93.184.215.14", "10.0.0.7"]})
    with pytest.raises(UnsafeUrl, match="10.0.0.7, a private address"):
        check_url("https://rebind.example/hook", allow_private=False, resolver=dns)


def test_a_public_url_is_accepted_with_the_address_to_connect_to():
    target = check_url("https://hooks.example:8443/in?x=1", allow_private=False,
                       resolver=fake_dns({"hooks.example": ["93.184.215.14"]}))
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example", 8443)
    assert target.address == "93.184.215.14"


@pytest.mark.parametrize(("url", "fragment"), [
    ("ftp://93.184.215.14/hook", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("https:///no-host", "no host"),
    ("http://93.184.215.14:99999/", "not a valid URL"),
    ("https://no-such-host.example/hook", "does not resolve"),
])
def test_malformed_or_unresolvable_urls_are_refused(url, fragment):
    with pytest.raises(UnsafeUrl, match=fragment):
        check_url(url, allow_private=True, resolver=fake_dns({"93.184.215.14": ["93.184.215.14"]}))


def test_the_operator_can_allow_private_receivers():
    assert check_url("http://127.0.0.1:9000/hook", allow_private=True).address == "127.0.0.1"


def test_the_webhook_spec_round_trips_keeps_its_secret_out_of_repr_and_defaults_to_no_epochs():
    body = spec(IRIS_MLP, webhook={"url": "https://hooks.example/in", "secret": "s3cret-s3cret-s3cret"})
    parsed = JobSpec.model_validate(body)
    assert JobSpec.model_validate(parsed.model_dump(mode="json")) == parsed
    assert "s3cret" not in repr(parsed) and "s3cret" not in str(parsed.webhook)
    assert parsed.model_dump(mode="json")["webhook"]["secret"] == "s3cret-s3cret-s3cret"  # stored for signing
    assert "job.epoch" not in parsed.webhook.events
    assert set(WebhookEvent.__args__) == {e.value for e in EventType}
    assert set(DEFAULT_WEBHOOK_EVENTS) == {e.value for e in EventType} - {"job.epoch"}
