"""The pipeline's management commands: each stage by hand, all of them once, and the status."""

import io

import pytest
from django.core.management import call_command

from orders.models import Order, OrderStatus
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open

pytestmark = pytest.mark.django_db


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=out)
    return out.getvalue()


def test_the_stages_by_hand_buy_and_pay():
    shop_open()
    buyer_ready("alice")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    assert _run("poll_feeds") == "stored 1 new post(s)\n"
    assert _run("process_posts") == "decided 1 post(s)\n  order_created: 1\n"
    assert "sent 1 reply(ies); opened 1 window(s)" in _run("send_replies")
    assert _run("expire_orders") == "expired 0 order(s)\n"
    post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[0])}")
    tick_output = _run("pipeline_tick")
    assert "== poll_feeds\nstored 1 new post(s)" in tick_output
    assert "confirmed: 1" in tick_output
    assert Order.objects.get().status == OrderStatus.PAID


def test_pipeline_status_shows_lag_and_backlog():
    shop_open()
    buyer_ready("alice")
    post("alice", f"@{BRAND} #BuyKindleFireHD")
    _run("poll_feeds")
    status = _run("pipeline_status")
    assert "@HashcartDeals (sandbox) mentions: lag" in status
    assert "undecided posts: 1" in status
    _run("process_posts")
    status = _run("pipeline_status")
    assert "undecided posts: 0" in status
    assert "replies unsent: confirmation_request 1" in status
    assert "orders pending: 1 awaiting their reply, 0 awaiting confirmation" in status
