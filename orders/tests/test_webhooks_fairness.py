"""Webhook sending under hostile or broken receivers: one merchant's dead endpoint does not delay
another's, a trickled answer cannot hold a sender, a lapsed lease pushes the delivery back, DNS
rebinding reaches nothing, and a disabled endpoint holds its deliveries (review of issue 14)."""

import socket
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from catalog.tests.factories import MerchantFactory
from orders.models import (
    Alert,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEvent,
)
from orders.services.webhooks import (
    webhook_deliveries_send_due,
    webhook_endpoint_create,
    webhook_endpoint_disable,
    webhook_endpoint_update,
    webhook_event_record,
)
from orders.services.webhooks.endpoints import webhook_address_public
from orders.tests.test_webhooks import Receiver, receiver  # noqa: F401 (the fixture)

QUEUED, SENDING = WebhookDeliveryStatus.QUEUED, WebhookDeliveryStatus.SENDING
HELD, DELIVERED = WebhookDeliveryStatus.HELD, WebhookDeliveryStatus.DELIVERED


def _record(endpoint, key, now=None):
    webhook_event_record(
        merchant_id=endpoint.merchant_id,
        event_type="campaign.sold_out",
        data={"campaign": {"id": 1}},
        event_key=key,
        now=now or timezone.now(),
    )


def _webhooks(settings, **values):
    settings.HASHCART = {
        **settings.HASHCART,
        "WEBHOOKS": {**settings.HASHCART["WEBHOOKS"], **values},
    }


@pytest.fixture
def hole():
    """A listening socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/h"
    sock.close()


@pytest.mark.django_db(transaction=True)
def test_a_dead_endpoint_does_not_delay_another_merchants_deliveries(receiver, hole, settings):  # noqa: F811
    """Merchant A's endpoint never answers and has the oldest backlog; merchant B's delivery,
    queued after it, reaches B within two request deadlines (TIMEOUT 1 s: bound 2.5 s) with
    the beat sweeping every 0.5 s."""
    _webhooks(settings, SENDERS=2, TIMEOUT_SECONDS=1, CONNECT_TIMEOUT_SECONDS=1)
    slow = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=hole, events=["campaign.sold_out"]
    )
    good = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=receiver.url, events=["campaign.sold_out"]
    )
    start = timezone.now()
    for n in range(30):
        _record(slow, f"s{n}", start)
    _record(good, "g", start + timedelta(milliseconds=1))
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            webhook_deliveries_send_due(now=timezone.now())
            stop.wait(0.5)
        connection.close()

    beats = [threading.Thread(target=beat) for _ in range(2)]  # two workers, as in production
    began = time.monotonic()
    for thread in beats:
        thread.start()
    try:
        while not receiver.requests and time.monotonic() - began < 10:
            time.sleep(0.02)
        took = time.monotonic() - began
    finally:
        stop.set()
        for thread in beats:
            thread.join()
    assert receiver.requests, "merchant B's delivery was never sent"
    assert took < 2.5, f"merchant B waited {took:.1f} s behind merchant A's dead endpoint"
    # A's deliveries were tried and pushed back, not lost or stuck in "sending".
    assert not WebhookDelivery.objects.filter(endpoint=slow, status=SENDING).exists()
    assert WebhookAttempt.objects.filter(delivery__endpoint=slow).exists()


@pytest.mark.django_db
def test_a_trickled_answer_ends_at_the_request_deadline(settings):
    """The receiver answers 200's head, then one byte of body every 0.3 s for 6 s: the request
    ends at the 1 s deadline (the reply is never drained)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def serve():
        client, _ = server.accept()
        client.recv(65536)
        try:
            client.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(20):
                time.sleep(0.3)
                client.sendall(b"1\r\nx\r\n")
        except OSError:
            pass
        client.close()

    def serve_head_slowly():
        client, _ = server.accept()
        client.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 40:
                client.sendall(bytes([byte]))
                time.sleep(0.3)
        except OSError:
            pass
        client.close()

    _webhooks(settings, TIMEOUT_SECONDS=1, CONNECT_TIMEOUT_SECONDS=1)
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk,
        url=f"http://127.0.0.1:{server.getsockname()[1]}/h",
        events=["campaign.sold_out"],
    )
    for key, serving in (("body", serve), ("head", serve_head_slowly)):
        threading.Thread(target=serving, daemon=True).start()
        _record(endpoint, key)
        began = time.monotonic()
        webhook_deliveries_send_due(now=timezone.now())
        took = time.monotonic() - began
        assert took < 2, f"a trickled {key} held the sender {took:.1f} s"
    server.close()
    # The trickled head is no answer: retried.
    attempts = WebhookAttempt.objects.order_by("id")
    assert [a.status_code for a in attempts] == [200, None]
    assert "Timed out" in attempts[1].error


@pytest.mark.django_db
def test_a_lapsed_lease_counts_as_a_failed_attempt_and_waits(receiver):  # noqa: F811
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=receiver.url, events=["campaign.sold_out"]
    )
    now = timezone.now()
    _record(endpoint, "k", now)
    WebhookDelivery.objects.update(
        status=SENDING, attempts=1, claimed_until=now - timedelta(seconds=1), claim_token="dead"
    )
    summary = webhook_deliveries_send_due(now=now)
    delivery = WebhookDelivery.objects.get()
    assert summary.attempted == 0
    assert not receiver.requests
    assert delivery.status == QUEUED
    assert delivery.next_attempt_at > now
    assert delivery.claim_token == ""
    assert delivery.claimed_until is None
    assert WebhookAttempt.objects.get(delivery=delivery).error.startswith("No outcome")
    webhook_deliveries_send_due(now=delivery.next_attempt_at)
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_one_endpoints_backlog_does_not_fill_the_claim(receiver, settings):  # noqa: F811
    _webhooks(settings, PER_ENDPOINT_PER_SWEEP=3)
    busy = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=receiver.url, events=["campaign.sold_out"]
    )
    other = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=receiver.url, events=["campaign.sold_out"]
    )
    now = timezone.now()
    for n in range(10):
        _record(busy, f"b{n}", now)
    _record(other, "o", now + timedelta(seconds=1))
    summary = webhook_deliveries_send_due(now=now + timedelta(seconds=2), limit=4)
    assert summary.delivered == 4
    assert WebhookDelivery.objects.get(endpoint=other).status == DELIVERED


@pytest.mark.django_db
def test_dns_rebinding_reaches_nothing(receiver, settings):  # noqa: F811
    """The name answers a public address to the first lookup and loopback to any later one:
    the request goes to the address checked (here unreachable), never to loopback."""
    port = receiver.server.server_address[1]
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk,
        url=f"http://rebind.attacker.test:{port}/h",
        events=["campaign.sold_out"],
    )
    _record(endpoint, "k")
    _webhooks(settings, REQUIRE_HTTPS=True, TIMEOUT_SECONDS=0.5, CONNECT_TIMEOUT_SECONDS=0.5)
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host == "rebind.attacker.test":
            lookups.append(host)
            address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
            return real(address, *args, **kwargs)
        return real(host, *args, **kwargs)

    with mock.patch("socket.getaddrinfo", side_effect=rebinding):
        summary = webhook_deliveries_send_due(now=timezone.now())
    assert receiver.requests == []
    assert summary.delivered == 0
    assert len(lookups) == 1


@pytest.mark.django_db
def test_a_name_resolving_to_loopback_is_not_sent_in_production(receiver, settings):  # noqa: F811
    port = receiver.server.server_address[1]
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk,
        url=f"http://localhost:{port}/h",
        events=["campaign.sold_out"],
    )
    _record(endpoint, "k")
    _webhooks(settings, REQUIRE_HTTPS=True)
    webhook_deliveries_send_due(now=timezone.now())
    assert receiver.requests == []
    assert "public address" in WebhookDelivery.objects.get().last_error


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("10.1.2.3", False),
        ("100.64.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("64:ff9b:1::a00:1", False),
        ("2002:7f00:1::1", False),
        ("fe80::1%eth0", False),
        ("224.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_address_public(address, public):
    assert webhook_address_public(address) is public


@pytest.mark.django_db
def test_a_second_disabling_alerts_again():
    from accounts.services import staff_user_upsert

    merchant = MerchantFactory()
    staff_user_upsert(username="s1", email="s1@example.com", password="pw", merchant_id=merchant.pk)
    endpoint = webhook_endpoint_create(
        merchant_id=merchant.pk, url="https://hooks.example.com/h", events=["campaign.sold_out"]
    )
    now = timezone.now()
    endpoint.failing_since = now - timedelta(days=3)
    endpoint.save()
    assert webhook_endpoint_disable(endpoint=endpoint, now=now)
    endpoint.refresh_from_db()
    webhook_endpoint_update(endpoint=endpoint, now=now, enabled=True)
    later = now + timedelta(days=10)
    endpoint.refresh_from_db()
    endpoint.failing_since = later - timedelta(days=3)
    endpoint.save()
    assert webhook_endpoint_disable(endpoint=endpoint, now=later)
    assert Alert.objects.filter(kind="webhook_disabled", merchant=merchant).count() == 2


@pytest.mark.django_db
def test_events_while_disabled_are_held_and_sent_on_enabling(receiver):  # noqa: F811
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=receiver.url, events=["campaign.sold_out"]
    )
    now = timezone.now()
    _record(endpoint, "before", now)
    endpoint.failing_since = now - timedelta(days=3)
    endpoint.save()
    assert webhook_endpoint_disable(endpoint=endpoint, now=now)
    _record(endpoint, "during", now + timedelta(minutes=1))
    assert WebhookEvent.objects.count() == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {HELD}
    later = now + timedelta(days=5)  # past the held deliveries' first give-up time
    assert webhook_deliveries_send_due(now=later).attempted == 0  # held: not sent
    assert receiver.requests == []
    endpoint.refresh_from_db()
    webhook_endpoint_update(endpoint=endpoint, now=later, enabled=True)
    summary = webhook_deliveries_send_due(now=later)
    assert summary.delivered == 2
    assert len(receiver.requests) == 2
    assert WebhookDelivery.objects.filter(status=DELIVERED).count() == 2


@pytest.mark.django_db
def test_staff_disabling_holds_the_queue(receiver):  # noqa: F811
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk, url=receiver.url, events=["campaign.sold_out"]
    )
    now = timezone.now()
    _record(endpoint, "k", now)
    webhook_endpoint_update(endpoint=endpoint, now=now, enabled=False)
    assert WebhookDelivery.objects.get().status == HELD
    webhook_endpoint_update(endpoint=endpoint, now=now, enabled=True)
    assert webhook_deliveries_send_due(now=now).delivered == 1


def _tls_files(tmp_path, name):
    """A CA (its PEM file) and a certificate for ``name`` it signed, with its key."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem_key(key):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file = tmp_path / "ca.pem", tmp_path / "cert.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + pem_key(key))
    return ca_file, cert_file


@pytest.mark.parametrize(("certified", "delivered"), [("hooks.test", True), ("other.test", False)])
@pytest.mark.django_db
def test_https_goes_to_the_resolved_address_and_checks_the_host_name(
    tmp_path, monkeypatch, certified, delivered
):
    """hooks.test resolves to 127.0.0.1: the connection goes to that address, with SNI and the
    Host header on the name, and the certificate must be the name's (one for another name is
    refused)."""
    import ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ca_file, cert_file = _tls_files(tmp_path, certified)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # read by the context's default paths
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen["host"] = self.headers["Host"]
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file)

    def sni(sock, name, ctx):
        seen["sni"] = name

    context.sni_callback = sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    endpoint = webhook_endpoint_create(
        merchant_id=MerchantFactory().pk,
        url=f"https://hooks.test:{port}/h",
        events=["campaign.sold_out"],
    )
    _record(endpoint, "k")
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real("127.0.0.1" if host == "hooks.test" else host, *args, **kwargs)

    try:
        with mock.patch("socket.getaddrinfo", side_effect=resolve):
            summary = webhook_deliveries_send_due(now=timezone.now())
    finally:
        server.shutdown()
        server.server_close()
    assert summary.delivered == int(delivered)
    if delivered:
        assert seen == {"host": f"hooks.test:{port}", "sni": "hooks.test"}
    else:
        error = WebhookDelivery.objects.get().last_error
        assert error.startswith("SSLError")
        assert "hooks.test" in error
