"""Merchant alerts (issue 14, item 4): each cause raises one alert, once and only once across
repeated sweeps, by e-mail through the retried outbox to the merchant's recipients; low stock
again only after the stock came back above its threshold and fell again; the late-shipment
digest once per local day from the merchant's chosen local time; one merchant's settings never
change another's alerts. The clock is frozen (``time_machine``) and passed to the sweep."""

from datetime import UTC, datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services.people import staff_user_upsert
from accounts.tests.factories import CardholderFactory
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory, MerchantFactory, ProductFactory
from fulfillment.models import ShipmentStatus
from fulfillment.tests.factories import ShipmentFactory
from orders.models import (
    STAFF_ALERT,
    Alert,
    AlertSettings,
    Dispute,
    Notification,
    OrderStatus,
    OutboxStatus,
    PaymentOperation,
    Return,
    WaitlistEntry,
)
from orders.services.alerts import alert_raise
from orders.services.alerts.sweep import alerts_sweep
from orders.services.notifications import notifications_send_due
from orders.tests.factories import OrderFactory
from social.tests.factories import PostFactory
from tests.waiting import in_another_connection, someone_waits_on_a_lock, wait_for

pytestmark = pytest.mark.django_db

# A Tuesday, 15:00 UTC: 10:00 in New York (the merchants' default zone).
T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def clock(time_machine):
    """Freeze time at ``T0``; ``clock(at)`` moves it. Returns the frozen now each call."""

    def at(when: datetime = T0) -> datetime:
        time_machine.move_to(when, tick=False)
        return timezone.now()

    at()
    return at


@pytest.fixture(autouse=True)
def webhook_events(monkeypatch):
    """The webhooks part fills ``webhook_event_record`` in; here its calls are recorded."""
    calls: list[dict] = []
    monkeypatch.setattr(
        "orders.services.alerts.sweep.webhook_event_record", lambda **kw: calls.append(kw)
    )
    return calls


def _merchant_with_staff(name):
    merchant = MerchantFactory()
    staff_user_upsert(
        username=f"staff-{name}",
        email=f"{name}@merchant.example",
        password="pw",
        merchant_id=merchant.pk,
    )
    return merchant


def _campaign(merchant, **fields):
    return CampaignFactory(product=ProductFactory(merchant=merchant), **fields)


def _hold(campaign: Campaign, reserved: int) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(stock_reserved=reserved)


def _sweep() -> dict[str, int]:
    return dict(alerts_sweep(now=timezone.now()))


def _emails() -> list[Notification]:
    return list(Notification.objects.filter(kind=STAFF_ALERT).order_by("pk"))


def _alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind).order_by("pk"))


# --- Campaigns --------------------------------------------------------------------------------
def test_sold_out_alerts_once_per_campaign_across_sweeps_and_records_one_webhook_event(
    clock, webhook_events
):
    merchant = _merchant_with_staff("ann")
    campaign = _campaign(merchant, stock_total=5)
    _hold(campaign, 4)
    assert "sold_out" not in _sweep()

    _hold(campaign, 5)
    assert _sweep()["sold_out"] == 1
    for _ in range(3):
        clock(timezone.now() + timedelta(minutes=5))
        assert "sold_out" not in _sweep()
    # Units came back (an order expired) and sold again: still the one alert.
    _hold(campaign, 3)
    _sweep()
    _hold(campaign, 5)
    _sweep()

    [alert] = _alerts("sold_out")
    assert alert.cause == f"campaign:{campaign.pk}"
    [email] = _emails()
    assert email.to_email == "ann@merchant.example"
    assert email.cardholder_id is None
    assert f"#{campaign.hashtag}" in email.subject
    assert [(e["event_type"], e["event_key"]) for e in webhook_events] == [
        ("campaign.sold_out", alert.cause)
    ]
    assert webhook_events[0]["merchant_id"] == merchant.pk
    assert webhook_events[0]["data"]["campaign"]["id"] == campaign.pk


def test_low_stock_alerts_once_per_crossing_and_again_only_after_stock_rose_above(
    clock, webhook_events
):
    merchant = _merchant_with_staff("bob")
    campaign = _campaign(merchant, stock_total=10, low_stock_threshold=3)
    _hold(campaign, 6)  # 4 left: above
    assert "low_stock" not in _sweep()

    _hold(campaign, 7)  # 3 left: at the threshold
    assert _sweep()["low_stock"] == 1
    _hold(campaign, 8)  # lower still, same crossing
    assert "low_stock" not in _sweep()
    assert "low_stock" not in _sweep()

    _hold(campaign, 5)  # 5 left: back above, re-armed
    assert "low_stock" not in _sweep()
    _hold(campaign, 9)  # the second crossing
    assert _sweep()["low_stock"] == 1
    assert "low_stock" not in _sweep()

    first, second = _alerts("low_stock")
    assert first.cleared_at is not None
    assert second.cleared_at is None
    assert [first.cause, second.cause] == [f"campaign:{campaign.pk}:1", f"campaign:{campaign.pk}:2"]
    assert len(_emails()) == 2
    assert [e["event_key"] for e in webhook_events] == [first.cause, second.cause]
    assert {e["event_type"] for e in webhook_events} == {"campaign.low_stock"}


def test_a_unit_or_two_coming_back_in_a_sale_is_the_same_low_stock_crossing(clock):
    """Re-arming needs the stock back above the threshold by a margin (half of it, at least
    one): an expired order's unit, taken again, sends no second e-mail."""
    merchant = _merchant_with_staff("bob")
    campaign = _campaign(merchant, stock_total=20, low_stock_threshold=6)
    _hold(campaign, 15)  # 5 left: crossed
    assert _sweep()["low_stock"] == 1
    for held in (13, 15, 11, 15):  # 7 and 9 left (above 6, not above 6 + 3), then 5 again
        _hold(campaign, held)
        assert "low_stock" not in _sweep()
    _hold(campaign, 10)  # 10 left: above 9, re-armed
    assert "low_stock" not in _sweep()
    _hold(campaign, 15)  # a real second crossing
    assert _sweep()["low_stock"] == 1
    assert len(_emails()) == 2


def test_a_digest_whose_time_passed_between_two_sweeps_goes_after_midnight(clock):
    """New York, digest at 23:58: sweeps at 23:55:30 and (next day) 00:00:30 still send the
    day's digest, once; a merchant's first digest is never yesterday's."""
    merchant = _merchant_with_staff("jo")
    AlertSettings.objects.create(merchant=merchant, digest_time=time(23, 58))
    day1 = datetime(2026, 12, 1, tzinfo=UTC).date()
    late = ShipmentFactory(
        order=OrderFactory(campaign=_campaign(merchant), status=OrderStatus.PAID),
        ship_by=day1 - timedelta(days=3),
        promised_delivery=day1 - timedelta(days=1),
    )
    clock(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # 07:00 on the 1st: no digest ran yet
    assert "late_shipments" not in _sweep()
    clock(datetime(2026, 12, 2, 4, 59, tzinfo=UTC))  # 23:59 on the 1st: the first digest
    assert _sweep()["late_shipments"] == 1
    clock(datetime(2026, 12, 3, 4, 55, 30, tzinfo=UTC))  # 23:55:30 on the 2nd
    assert "late_shipments" not in _sweep()
    clock(datetime(2026, 12, 3, 5, 0, 30, tzinfo=UTC))  # 00:00:30 on the 3rd: the 2nd's, late
    assert _sweep()["late_shipments"] == 1
    clock(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    assert "late_shipments" not in _sweep()
    digests = [a.cause for a in _alerts("late_shipments")]
    assert digests == ["digest:2026-12-01", "digest:2026-12-02"]
    assert f"#{late.order.confirmation_code}" in _emails()[-1].body


def test_low_stock_needs_a_threshold_and_leaves_none_left_to_sold_out(clock):
    merchant = _merchant_with_staff("cat")
    no_threshold = _campaign(merchant, stock_total=10)
    _hold(no_threshold, 9)
    straight_to_zero = _campaign(merchant, stock_total=10, low_stock_threshold=3)
    _hold(straight_to_zero, 10)
    raised = _sweep()
    assert "low_stock" not in raised
    assert raised["sold_out"] == 1


def _wait(campaign, n):
    for _ in range(n):
        WaitlistEntry.objects.create(
            merchant=campaign.merchant,
            campaign=campaign,
            cardholder=CardholderFactory(),
            post=PostFactory(),
            posted_at=timezone.now(),
        )


def test_waitlist_demand_above_each_merchants_own_threshold_alerts_once(clock):
    a, b = _merchant_with_staff("dan"), _merchant_with_staff("eve")
    AlertSettings.objects.create(merchant=a, waitlist_threshold=2)
    AlertSettings.objects.create(merchant=b, waitlist_threshold=5)
    a_campaign, b_campaign = _campaign(a), _campaign(b)
    _wait(a_campaign, 2)
    _wait(b_campaign, 3)
    assert "waitlist_demand" not in _sweep()  # 2 is not above 2; 3 is not above 5

    _wait(a_campaign, 1)
    assert _sweep()["waitlist_demand"] == 1
    _wait(a_campaign, 5)
    assert "waitlist_demand" not in _sweep()
    [alert] = _alerts("waitlist_demand")
    assert (alert.merchant_id, alert.subject_id) == (a.pk, a_campaign.pk)

    _wait(b_campaign, 3)  # 6 above 5
    assert _sweep()["waitlist_demand"] == 1
    assert {e.to_email for e in _emails()} == {"dan@merchant.example", "eve@merchant.example"}


# --- Payments, disputes, returns --------------------------------------------------------------
def _failed(order, operation):
    return PaymentOperation.objects.create(
        order=order,
        operation=operation,
        idempotency_key=f"order-{order.pk}-{operation}",
        status=OutboxStatus.FAILED,
        attempts=7,
        result="card_declined",
    )


def test_failed_capture_or_void_alerts_once_per_payment_operation(clock):
    merchant = _merchant_with_staff("fay")
    campaign = _campaign(merchant)
    capture = _failed(OrderFactory(campaign=campaign), "capture")
    PaymentOperation.objects.create(
        order=capture.order,
        operation="authorize",
        idempotency_key=f"order-{capture.order_id}-authorize",
        status=OutboxStatus.FAILED,
    )  # an authorization failing is the buyer's business, not an alert
    assert _sweep()["payment_failed"] == 1
    assert "payment_failed" not in _sweep()

    void = _failed(OrderFactory(campaign=campaign), "void")
    assert _sweep()["payment_failed"] == 1
    assert "payment_failed" not in _sweep()
    assert [a.subject_id for a in _alerts("payment_failed")] == [capture.pk, void.pk]
    [first, second] = _emails()
    assert f"#{capture.order.confirmation_code}" in first.body
    assert "card_declined" in first.body
    assert "void" in second.subject


def test_disputes_and_returns_opened_alert_once_each(clock):
    merchant = _merchant_with_staff("gus")
    order = OrderFactory(campaign=_campaign(merchant), status=OrderStatus.SHIPPED)
    now = timezone.now()
    dispute = Dispute.objects.create(
        order=order, merchant=merchant, opened_at=now, deadline=now + timedelta(days=7)
    )
    assert _sweep()["dispute_opened"] == 1
    assert _sweep() == {}
    case = Return.objects.create(
        order=order, merchant=merchant, reason="too small, call me", requested_at=now
    )
    assert _sweep()["return_opened"] == 1
    assert _sweep() == {}
    assert [a.subject_id for a in _alerts("dispute_opened")] == [dispute.pk]
    assert [a.subject_id for a in _alerts("return_opened")] == [case.pk]
    # The buyer's words stay in the admin; their e-mail is in no alert.
    bodies = " ".join(e.body for e in _emails())
    assert "call me" not in bodies
    assert order.cardholder.user.email not in bodies


# --- Shipments ----------------------------------------------------------------------------------
def _paid_awaiting_label(merchant, *, authorized_days_ago, ship_by):
    order = OrderFactory(campaign=_campaign(merchant), status=OrderStatus.PAID)
    auth = PaymentOperation.objects.create(
        order=order,
        operation="authorize",
        idempotency_key=f"order-{order.pk}-authorize",
        status=OutboxStatus.DONE,
    )
    PaymentOperation.objects.filter(pk=auth.pk).update(
        created_at=timezone.now() - timedelta(days=authorized_days_ago)
    )
    return ShipmentFactory(order=order, ship_by=ship_by, promised_delivery=ship_by + timedelta(2))


def test_an_authorization_that_lapses_before_the_ship_by_day_ends_alerts_once(clock, settings):
    settings.HASHCART = {**settings.HASHCART, "AUTH_LAPSE_DAYS": 6}
    merchant = _merchant_with_staff("hal")
    today = timezone.now().astimezone(NEW_YORK).date()
    # Authorized 5.5 days ago, ships by tomorrow: 6 days are up before tomorrow ends.
    lapsing = _paid_awaiting_label(merchant, authorized_days_ago=5.5, ship_by=today + timedelta(1))
    # Authorized 3 days ago, ships by tomorrow: 6 days are not up by then.
    _paid_awaiting_label(merchant, authorized_days_ago=3, ship_by=today + timedelta(1))
    # Lapsing, but its label is bought (the payment was captured then).
    bought = _paid_awaiting_label(merchant, authorized_days_ago=5.9, ship_by=today)
    type(bought).objects.filter(pk=bought.pk).update(status=ShipmentStatus.LABEL_BOUGHT)

    assert _sweep()["authorization_lapse"] == 1
    for _ in range(3):
        clock(timezone.now() + timedelta(hours=1))
        assert "authorization_lapse" not in _sweep()
    [alert] = _alerts("authorization_lapse")
    assert alert.subject_id == lapsing.order_id
    [email] = _emails()
    assert f"#{lapsing.order.confirmation_code}" in email.subject


def test_the_threshold_of_lapsing_authorizations_is_a_setting(clock, settings):
    merchant = _merchant_with_staff("ida")
    today = timezone.now().astimezone(NEW_YORK).date()
    _paid_awaiting_label(merchant, authorized_days_ago=3, ship_by=today + timedelta(1))
    settings.HASHCART = {**settings.HASHCART, "AUTH_LAPSE_DAYS": 6}
    assert "authorization_lapse" not in _sweep()
    settings.HASHCART = {**settings.HASHCART, "AUTH_LAPSE_DAYS": 4}
    assert _sweep()["authorization_lapse"] == 1


def test_late_shipments_digest_goes_once_per_local_day_at_the_chosen_local_time(clock):
    # New York is UTC-5 in December: 08:00 there is 13:00 UTC.
    merchant = _merchant_with_staff("jo")
    AlertSettings.objects.create(merchant=merchant, digest_time=time(8, 0))
    # Another merchant, in Tokyo (UTC+9), its digest at 08:00 there (23:00 UTC), none late.
    quiet = _merchant_with_staff("ken")
    quiet.time_zone = "Asia/Tokyo"
    quiet.save()
    day1 = datetime(2026, 12, 1, tzinfo=UTC).date()
    late = ShipmentFactory(
        order=OrderFactory(campaign=_campaign(merchant), status=OrderStatus.PAID),
        ship_by=day1 - timedelta(days=1),
        promised_delivery=day1 + timedelta(days=1),
    )

    clock(datetime(2026, 12, 1, 12, 59, tzinfo=UTC))  # 07:59 in New York
    assert "late_shipments" not in _sweep()
    clock(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))  # 08:00
    assert _sweep()["late_shipments"] == 1
    for hour in (14, 18, 22):  # later that day
        clock(datetime(2026, 12, 1, hour, 59, tzinfo=UTC))
        assert "late_shipments" not in _sweep()
    # Tokyo's day 2 begins, its 08:00 comes at 23:00 UTC: looked at, nothing late, no e-mail.
    quiet_days = Alert.objects.filter(kind="late_shipments", merchant=quiet)
    assert list(quiet_days.values_list("cause", flat=True)) == ["digest:2026-12-01"]
    clock(datetime(2026, 12, 1, 23, 0, tzinfo=UTC))
    assert "late_shipments" not in _sweep()
    assert quiet_days.count() == 2
    clock(datetime(2026, 12, 2, 4, 59, tzinfo=UTC))  # 23:59 on the 1st in New York
    assert "late_shipments" not in _sweep()
    clock(datetime(2026, 12, 2, 12, 59, tzinfo=UTC))  # 07:59 on the 2nd
    assert "late_shipments" not in _sweep()
    clock(datetime(2026, 12, 2, 13, 5, tzinfo=UTC))  # 08:05 on the 2nd
    assert _sweep()["late_shipments"] == 1

    digests = [a for a in _alerts("late_shipments") if a.merchant_id == merchant.pk]
    assert [a.cause for a in digests] == ["digest:2026-12-01", "digest:2026-12-02"]
    emails = _emails()
    assert len(emails) == 2
    assert {e.to_email for e in emails} == {"jo@merchant.example"}
    assert f"#{late.order.confirmation_code}" in emails[0].body
    # Tokyo's quiet days were looked at once each, and e-mailed nobody.
    assert list(quiet_days.order_by("pk").values_list("cause", "emails")) == [
        ("digest:2026-12-01", 0),
        ("digest:2026-12-02", 0),
    ]


# --- Settings -----------------------------------------------------------------------------------
def test_one_merchants_settings_do_not_change_anothers_alerts(clock):
    a, b = _merchant_with_staff("lea"), _merchant_with_staff("max")
    AlertSettings.objects.create(
        merchant=b, kinds_off=["sold_out"], recipients="ops@b.example\nboss@b.example"
    )
    a_campaign, b_campaign = _campaign(a, stock_total=2), _campaign(b, stock_total=2)
    c_campaign = _campaign(b, stock_total=2, low_stock_threshold=1)
    _hold(a_campaign, 2)
    _hold(b_campaign, 2)
    _hold(c_campaign, 1)
    raised = _sweep()
    assert raised["sold_out"] == 2  # recorded for both
    assert raised["low_stock"] == 1
    by_merchant = {(e.to_email, e.subject.split(":")[0]) for e in _emails()}
    assert by_merchant == {
        ("lea@merchant.example", "[Hashcart] Sold out"),
        ("ops@b.example", "[Hashcart] Low stock"),
        ("boss@b.example", "[Hashcart] Low stock"),
    }
    # B's sold-out alert is recorded unsent: turning it on later sends no old cause.
    AlertSettings.objects.filter(merchant=b).update(kinds_off=[])
    assert _sweep() == {}
    assert len(_emails()) == 3


def test_alert_raise_once_per_cause_and_false_when_the_kind_is_off(clock):
    a, b = _merchant_with_staff("ned"), _merchant_with_staff("ola")
    AlertSettings.objects.create(merchant=b, kinds_off=["webhook_disabled"])
    now = timezone.now()
    kw = {
        "kind": "webhook_disabled",
        "cause": "endpoint:1",
        "subject": "S",
        "body": "B",
        "now": now,
    }
    assert alert_raise(merchant_id=a.pk, **kw) is True
    assert alert_raise(merchant_id=a.pk, **kw) is False
    assert alert_raise(merchant_id=b.pk, **kw) is False
    assert alert_raise(merchant_id=b.pk, **kw) is False
    assert Alert.objects.count() == 2
    assert [e.to_email for e in _emails()] == ["ned@merchant.example"]
    # A caller's key longer than the column is kept whole in meaning: once, and apart.
    long = {**kw, "cause": "endpoint:" + "x" * 500}
    assert alert_raise(merchant_id=a.pk, **long) is True
    assert alert_raise(merchant_id=a.pk, **long) is False
    assert alert_raise(merchant_id=a.pk, **{**long, "cause": long["cause"] + "y"}) is True


def test_many_causes_of_one_kind_in_one_sweep_send_one_e_mail_listing_them(clock):
    merchant = _merchant_with_staff("pia")
    campaign = _campaign(merchant)
    for _ in range(60):
        _failed(OrderFactory(campaign=campaign), "capture")
    assert _sweep()["payment_failed"] == 60
    [email] = _emails()
    assert "60 alerts" in email.subject
    assert "and 10 more" in email.body
    assert Alert.objects.filter(kind="payment_failed", emails=1).count() == 60


def test_staff_alert_e_mails_are_sent_by_the_outbox_to_staff_addresses_only(clock):
    merchant = _merchant_with_staff("quinn")
    campaign = _campaign(merchant, stock_total=1)
    order = OrderFactory(campaign=campaign)
    _hold(campaign, 1)
    _sweep()
    assert notifications_send_due(now=timezone.now()) == 1
    [sent] = mail.outbox
    assert sent.to == ["quinn@merchant.example"]
    assert order.cardholder.user.email not in sent.body
    assert Notification.objects.get(kind=STAFF_ALERT).status == OutboxStatus.DONE


def test_a_staff_alert_is_the_only_e_mail_without_a_cardholder():
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(key="x", kind="order_created", to_email="a@b.example")
    Notification.objects.create(key="y", kind=STAFF_ALERT, to_email="a@b.example")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_raise_one_alert_and_one_e_mail(clock, webhook_events):
    """The first sweep's alert is inserted, not yet committed, when the second sweep inserts the
    same cause: the second waits on the unique key, then raises nothing."""
    merchant = _merchant_with_staff("rex")
    campaign = _campaign(merchant, stock_total=1)
    _hold(campaign, 1)
    now = timezone.now()
    with transaction.atomic():
        assert alerts_sweep(now=now)["sold_out"] == 1
        other = in_another_connection(lambda: alerts_sweep(now=now))
        wait_for(someone_waits_on_a_lock, "the second sweep to wait on the first one's alert")
    other.join(30)
    assert not other.errors
    assert "sold_out" not in other.result
    assert Alert.objects.filter(kind="sold_out").count() == 1
    assert len(_emails()) == 1
    assert len(webhook_events) == 1


def _world_of(n: int) -> None:
    """``n`` merchants, each with a sold-out campaign, a low one, a failed capture, a dispute,
    a lapsing authorization and a late shipment."""
    today = timezone.now().astimezone(NEW_YORK).date()
    for i in range(n):
        merchant = _merchant_with_staff(f"m{n}-{i}")
        sold = _campaign(merchant, stock_total=1)
        _hold(sold, 1)
        low = _campaign(merchant, stock_total=5, low_stock_threshold=2)
        _hold(low, 4)
        order = OrderFactory(campaign=low, status=OrderStatus.SHIPPED)
        _failed(order, "capture")
        Dispute.objects.create(
            order=order,
            merchant=merchant,
            opened_at=timezone.now(),
            deadline=timezone.now() + timedelta(days=7),
        )
        _paid_awaiting_label(merchant, authorized_days_ago=6.5, ship_by=today - timedelta(1))


def test_a_sweep_with_nothing_new_costs_the_same_queries_however_many_causes_it_raised_before(
    clock,
):
    def queries_of_a_quiet_sweep() -> int:
        assert len(_sweep()) == 6  # every kind but waitlists' and returns', raised once
        with CaptureQueriesContext(connection) as quiet:
            assert _sweep() == {}
        return len(quiet.captured_queries)

    _world_of(2)
    few = queries_of_a_quiet_sweep()
    _world_of(10)
    many = queries_of_a_quiet_sweep()
    print(f"queries of a quiet sweep: {few} (2 merchants), {many} (12 merchants)")
    assert many == few
    assert few <= 16  # (one is the merchants whose digests already run)


def test_the_alerts_sweep_command_raises_and_says_what(clock):
    merchant = _merchant_with_staff("sam")
    _hold(_campaign(merchant, stock_total=1), 1)
    out = StringIO()
    call_command("alerts_sweep", stdout=out)
    assert "sold_out 1" in out.getvalue()
    out = StringIO()
    call_command("alerts_sweep", stdout=out)
    assert out.getvalue().strip() == "alerts raised: none"


def test_a_failing_webhook_event_rolls_back_its_alert_alone_and_the_next_sweep_raises_it(
    clock, monkeypatch, caplog
):
    a, b = _merchant_with_staff("tia"), _merchant_with_staff("uma")
    _hold(_campaign(a, stock_total=1), 1)
    _hold(_campaign(b, stock_total=1), 1)
    recorded: list[int] = []

    def webhook(**kw):
        if kw["merchant_id"] == a.pk and not recorded:
            recorded.append(a.pk)
            raise RuntimeError("webhook outbox unavailable")

    monkeypatch.setattr("orders.services.alerts.sweep.webhook_event_record", webhook)
    assert _sweep()["sold_out"] == 1
    assert [x.merchant_id for x in _alerts("sold_out")] == [b.pk]
    assert "raising sold_out for merchant" in caplog.text
    assert [e.to_email for e in _emails()] == ["uma@merchant.example"]

    assert _sweep()["sold_out"] == 1
    assert {x.merchant_id for x in _alerts("sold_out")} == {a.pk, b.pk}
    assert len(_emails()) == 2


def test_a_campaign_that_ended_while_low_stops_standing(clock):
    merchant = _merchant_with_staff("val")
    campaign = _campaign(merchant, stock_total=10, low_stock_threshold=3)
    _hold(campaign, 8)
    assert _sweep()["low_stock"] == 1
    clock(campaign.ends_at + timedelta(minutes=1))
    assert "low_stock" not in _sweep()
    [alert] = _alerts("low_stock")
    assert alert.cleared_at is not None
