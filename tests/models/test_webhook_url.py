"""Which webhook URLs the service may call: public addresses only, unless the operator allows others."""

import re
import socket

import pytest

from models.enums import EventType
from models.spec import DEFAULT_WEBHOOK_EVENTS, JobSpec, WebhookEvent
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
    ("http://0.0.0.0/hook", "an unspecified"),
    ("http://100.64.0.1/hook", "non-public"),
])
def test_non_public_addresses_are_refused(url, reason):
    with pytest.raises(UnsafeUrl, match=f"{reason if reason.startswith('an ') else 'a ' + reason} address"):
        check_url(url, allow_private=False)


# Every spelling of a refused IPv4 address, and every IPv6 form that carries one,
# goes through the one rule (``refusal``) and is refused with the address inside named.
@pytest.mark.parametrize(("url", "why"), [
    # IPv4 spelled as one number, in octal, in hex or shortened: the resolver reads them as 127.0.0.1
    ("http://2130706433/", "127.0.0.1, a loopback address"),
    ("http://017700000001/", "127.0.0.1, a loopback address"),
    ("http://0x7f000001/", "127.0.0.1, a loopback address"),
    ("http://0177.0.0.1/", "127.0.0.1, a loopback address"),
    ("http://0x7f.0.0.1/", "127.0.0.1, a loopback address"),
    ("http://127.1/", "127.0.0.1, a loopback address"),
    ("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data", "169.254.169.254, a link-local address"),
    ("http://2852039166/latest/meta-data", "169.254.169.254, a link-local address"),
    # 6to4 (2002::/16): the IPv4 address is bits 16-47
    ("http://[2002:7f00:1::]/", "the 6to4 form of 127.0.0.1, a loopback address"),
    ("http://[2002:a9fe:a9fe::]/", "the 6to4 form of 169.254.169.254, a link-local address"),
    ("http://[2002:a00:1::1]/", "the 6to4 form of 10.0.0.1, a private address"),
    # IPv4-mapped and IPv4-compatible
    ("http://[::ffff:7f00:1]/", "the IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "the IPv4-mapped form of 169.254.169.254, a link-local address"),
    ("http://[::127.0.0.1]/", "the IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("http://[::a00:1]/", "the IPv4-compatible form of 10.0.0.1, a private address"),
    # NAT64: the well-known prefix and the local-use one
    ("http://[64:ff9b::7f00:1]/", "the NAT64 form of 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::169.254.169.254]/", "the NAT64 form of 169.254.169.254, a link-local address"),
    ("http://[64:ff9b:1::a9fe:a9fe]/", "the NAT64 form of 169.254.169.254, a link-local address"),
    # Teredo: the server address in clear, the client address obfuscated (XOR 0xffffffff)
    ("http://[2001:0:7f00:1::]/", "the Teredo server form of 127.0.0.1, a loopback address"),
    ("http://[2001:0:5db8:d70e::80ff:fffe]/", "the Teredo client form of 127.0.0.1, a loopback address"),
    ("http://[2001:0:5db8:d70e::5601:5601]/", "the Teredo client form of 169.254.169.254, a link-local address"),
    # ISATAP interface ids (0:5efe and 200:5efe) under any prefix, even a public one
    ("http://[2600::5efe:7f00:1]/", "the ISATAP form of 127.0.0.1, a loopback address"),
    ("http://[2600::200:5efe:a9fe:a9fe]/", "the ISATAP form of 169.254.169.254, a link-local address"),
    ("http://[2600:1f18::5efe:10.1.2.3]/", "the ISATAP form of 10.1.2.3, a private address"),
    # tunnels refused whatever they carry
    ("http://[2002:5db8:d70e::1]/", "a 6to4 address"),
    ("http://[2001:0:5db8:d70e::a247:28f1]/", "a Teredo address"),
    ("http://[64:ff9b:1::5db8:d70e]/", "a local-use NAT64 address"),
    ("http://[::5db8:d70e]/", "a reserved address"),  # IPv4-compatible is deprecated: nothing routes it
    ("http://[::]/", "an unspecified address"),
    ("http://[::ffff:0.0.0.0]/", "the IPv4-mapped form of 0.0.0.0, an unspecified address"),
])
def test_every_form_of_a_refused_ipv4_address_is_refused(url, why):
    with pytest.raises(UnsafeUrl, match=re.escape(why)):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(("url", "address"), [
    ("http://93.184.215.14/hook", "93.184.215.14"),
    ("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
    ("http://[::ffff:93.184.215.14]/", "::ffff:93.184.215.14"),  # the kernel connects to 93.184.215.14
    ("http://[64:ff9b::5db8:d70e]/", "64:ff9b::5db8:d70e"),  # DNS64's answer for 93.184.215.14
    ("http://1572394766/", "93.184.215.14"),  # a public address as one number is still that address
    ("http://[2600:1f18::5efe:5db8:d70e]/", "2600:1f18::5efe:5db8:d70e"),  # ISATAP of a public address
])
def test_public_addresses_in_any_form_are_accepted(url, address):
    assert check_url(url, allow_private=False).address == address


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
