"""Nobody left without an answer (issue 13, item 5). Each case gets its answer and nothing else:
no other reply, no other e-mail, no order, no stock moved; and the invitations to link never
take more than the public reply budget can afford."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import campaign_link_mark
from catalog.models import Campaign
from catalog.tests.factories import CampaignFactory
from core.when import moment_words
from orders.messages import link_page_url
from orders.models import Invitation, Notification, Order, OrderStatus
from sandbox.models import SandboxUser
from social.models import Post, Reply, ReplyStatus
from tests.shop import BRAND, buyer_ready, code_in, post, replies_to, shop_open, tick

pytestmark = pytest.mark.django_db

BUY = f"@{BRAND} #BuyKindleFireHD"


def outcome_of(sandbox_post) -> str:
    return Post.objects.get(platform="sandbox", post_id=str(sandbox_post.pk)).outcome


def _stock(campaign: Campaign) -> int:
    campaign.refresh_from_db()
    return campaign.stock_reserved


def _hints() -> list[str]:
    return [str(m.body) for m in mail.outbox if m.subject.startswith("Did you mean")]


# --- An unlinked author is invited to link, once per campaign ---------------------------------
def test_an_unlinked_author_gets_one_invitation_per_campaign_and_nothing_else():
    shop = shop_open()
    other = CampaignFactory(hashtag="BuyXbox360Bundle", stock_total=3)
    first, again = post("stranger", BUY), post("stranger", f"{BUY} now")
    tick()
    # A later batch, under a new handle (same platform user id): the invitation is remembered.
    SandboxUser.objects.filter(handle="stranger").update(handle="renamed")
    later = post("renamed", f"{BUY} please")
    xbox = post("renamed", f"@{BRAND} #BuyXbox360Bundle")
    tick()

    assert {outcome_of(p) for p in (first, again, later, xbox)} == {"not_linked"}
    assert [r.text for r in Reply.objects.order_by("id")] == [
        "@stranger To buy with #BuyKindleFireHD, first link your account and a card: "
        f"http://127.0.0.1:8000/link/?campaign=BuyKindleFireHD&m={campaign_link_mark('BuyKindleFireHD')}",
        "@renamed To buy with #BuyXbox360Bundle, first link your account and a card: "
        f"http://127.0.0.1:8000/link/?campaign=BuyXbox360Bundle&m={campaign_link_mark('BuyXbox360Bundle')}",
    ]
    assert Reply.objects.get(in_reply_to__post_id=str(first.pk)).priority == 2  # low
    assert not Order.objects.exists()
    assert (_stock(shop.campaign), _stock(other)) == (0, 0)
    assert not Notification.objects.exists()
    assert mail.outbox == []


def test_an_unlinked_author_of_a_post_after_the_end_is_told_it_ended_and_not_invited():
    shop = shop_open()
    Campaign.objects.filter(pk=shop.campaign.pk).update(
        starts_at=timezone.now() - timedelta(days=3), ends_at=timezone.now() - timedelta(days=1)
    )
    late = post("stranger", BUY)
    tick()
    assert outcome_of(late) == "not_linked"
    assert replies_to("stranger") == ["@stranger Sorry, the #BuyKindleFireHD offer has ended."]
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_the_link_in_an_invitation_names_the_campaign_on_the_linking_page(client: Client):
    alice = buyer_ready("alice", consent=False)
    client.force_login(alice.cardholder.user)
    invited = link_page_url(hashtag="BuyKindleFireHD").split("/link/", 1)[1]
    page = client.get(reverse("accounts:link") + invited).content.decode()
    assert "You came to buy with <strong>#BuyKindleFireHD</strong>" in page
    # Anything but a hashtag is not repeated on the page.
    odd = client.get(reverse("accounts:link") + "?campaign=<b>x</b>").content.decode()
    assert "You came to buy" not in odd
    # Nor a hashtag without our mark: nobody else chooses what the page says.
    forged = client.get(reverse("accounts:link") + "?campaign=FreeMoney&m=00000000")
    assert "You came to buy" not in forged.content.decode()
    assert "FreeMoney" not in forged.content.decode()


@pytest.mark.parametrize("budget", [3, 5])
def test_invitations_never_take_more_than_the_reply_budget_and_go_after_requests(
    budget, time_machine
):
    """A small budget (``budget`` replies per 15 minutes) and 40 unlinked authors: a buyer's
    confirmation request goes first; never more replies are sent than the bucket holds; no
    more invitations are queued than the budget can send before they go stale; and every
    author whose invitation the budget could not afford may be invited by a later post."""
    shop_open(budget=budget)
    buyer_ready("alice")
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    strangers = [post(f"stranger{n}", BUY) for n in range(40)]
    post("alice", BUY)
    tick()

    sent = Reply.objects.filter(status=ReplyStatus.SENT)
    assert sent.count() == budget
    assert sent.filter(kind="confirmation_request").count() == 1  # the request went first
    # The budget's room for low-priority replies: its rate over their 30 minutes before stale.
    room = budget * 2
    invites = Reply.objects.filter(kind="invite")
    assert invites.count() <= room
    assert Invitation.objects.count() == invites.count()  # the others were given back
    assert {outcome_of(p) for p in strangers} == {"not_linked"}

    # Over the next half hour, never more than the bucket allows.
    for minutes in range(1, 31):
        time_machine.move_to(start + timedelta(minutes=minutes), tick=False)
        tick()
        allowed = budget + budget * minutes * 60 // (15 * 60)
        assert Reply.objects.filter(status=ReplyStatus.SENT).count() <= allowed
    assert not Order.objects.exclude(cardholder__user__email="alice@example.com").exists()


# --- A linked cardholder's near miss gets a private hint ---------------------------------------
def _pending(handle: str = "alice") -> Order:
    post(handle, BUY)
    tick()
    order = Order.objects.get(author_handle=handle)
    assert order.status == OrderStatus.PENDING
    return order


def _one_hint_only(near, *, replies_before: int, handle: str = "alice") -> str:
    tick()
    assert outcome_of(near) == "near_miss"
    assert len(replies_to(handle)) == replies_before  # nothing public
    [hint] = _hints()
    assert Notification.objects.filter(kind="hint").count() == 1
    return hint


def test_a_confirmation_code_written_with_a_space_gets_a_private_hint_and_confirms_nothing():
    shop = shop_open()
    buyer_ready("alice")
    order = _pending()
    mail.outbox.clear()
    near = post("alice", f"@{BRAND} #Confirm {order.confirmation_code}")
    hint = _one_hint_only(near, replies_before=1)
    assert f"#Confirm {order.confirmation_code}" in hint
    assert f"post #Confirm{order.confirmation_code}" in hint
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert _stock(shop.campaign) == 1  # the order's own unit, nothing more


@pytest.mark.parametrize("spaced", [False, True], ids=["joined", "spaced"])
def test_a_code_one_character_off_gets_a_private_hint_with_the_right_code(spaced):
    shop = shop_open()
    buyer_ready("alice")
    order = _pending()
    mail.outbox.clear()
    code = order.confirmation_code
    wrong = code[:-1] + ("Z" if code[-1] != "Z" else "Y")
    near = post("alice", f"@{BRAND} #Confirm{' ' if spaced else ''}{wrong}")
    hint = _one_hint_only(near, replies_before=1)
    assert f"post #Confirm{code}" in hint
    assert Order.objects.get().status == OrderStatus.PENDING
    assert _stock(shop.campaign) == 1


def test_someone_elses_code_is_no_near_miss():
    shop_open()
    buyer_ready("alice")
    buyer_ready("bob")
    order = _pending("bob")
    mail.outbox.clear()
    other = post("alice", f"@{BRAND} #Confirm {order.confirmation_code}")
    tick()
    assert outcome_of(other) == "no_campaign"
    assert _hints() == []
    assert replies_to("alice") == []


@pytest.mark.parametrize("text", ["#Buy KindleFireHD", "#Buy Kindle Fire HD.", "#BuyKindle FireHD"])
def test_a_purchase_hashtag_split_by_a_space_gets_a_private_hint(text):
    shop = shop_open()
    buyer_ready("alice")
    near = post("alice", f"@{BRAND} {text} please")
    hint = _one_hint_only(near, replies_before=0)
    assert "post #BuyKindleFireHD" in hint
    assert "Kindle Fire HD" in hint
    assert not Order.objects.exists()
    assert _stock(shop.campaign) == 0


@pytest.mark.parametrize("tag", ["BuyKindelFireHD", "BuyKindleFire", "BuyKindleFireHDD"])
def test_a_hashtag_close_to_a_live_campaigns_gets_a_private_hint(tag):
    shop = shop_open()
    buyer_ready("alice")
    near = post("alice", f"@{BRAND} #{tag}")
    hint = _one_hint_only(near, replies_before=0)
    assert "post #BuyKindleFireHD" in hint
    assert not Order.objects.exists()
    assert _stock(shop.campaign) == 0


def test_a_hashtag_close_to_an_ended_campaigns_is_no_near_miss():
    shop = shop_open()
    Campaign.objects.filter(pk=shop.campaign.pk).update(
        starts_at=timezone.now() - timedelta(days=3), ends_at=timezone.now() - timedelta(days=1)
    )
    buyer_ready("alice")
    far = post("alice", f"@{BRAND} #BuyKindelFireHD")
    tick()
    assert outcome_of(far) == "no_campaign"
    assert _hints() == []


def test_an_unlinked_authors_near_miss_gets_nothing():
    shop_open()
    near = post("stranger", f"@{BRAND} #Buy KindleFireHD")
    tick()
    assert outcome_of(near) == "no_campaign"
    assert replies_to("stranger") == []
    assert mail.outbox == []
    assert not Invitation.objects.exists()


# --- Early and late posts ---------------------------------------------------------------------
@pytest.mark.parametrize("when", ["early", "late"])
def test_early_and_late_posts_are_told_when_it_opens_or_that_it_ended_and_nothing_else(when):
    shop = shop_open()
    now = timezone.now()
    window = (
        {"starts_at": now + timedelta(hours=5), "ends_at": now + timedelta(days=2)}
        if when == "early"
        else {"starts_at": now - timedelta(days=2), "ends_at": now - timedelta(hours=1)}
    )
    Campaign.objects.filter(pk=shop.campaign.pk).update(**window)
    buyer_ready("alice")
    mail.outbox.clear()
    asked = post("alice", BUY)
    tick()
    assert outcome_of(asked) == "campaign_closed"
    expected = (
        f"@alice #BuyKindleFireHD opens for orders on {moment_words(window['starts_at'])}. "
        "Post it again then."
        if when == "early"
        else "@alice Sorry, the #BuyKindleFireHD offer has ended."
    )
    assert replies_to("alice") == [expected]
    assert mail.outbox == []
    assert not Order.objects.exists()
    assert _stock(shop.campaign) == 0


# --- The cooling-off, shown before it bites --------------------------------------------------
def test_the_consent_step_and_the_settings_page_say_when_buying_by_post_opens(client: Client):
    alice = buyer_ready("alice", linked_ago=timedelta(hours=2), consent=False)
    opens = moment_words(alice.identity.linked_at + timedelta(hours=24))
    client.force_login(alice.cardholder.user)
    consent = client.get(reverse("accounts:link_consent")).content.decode()
    assert f"Buying by post opens for you on {opens}" in consent
    settings_page = client.get(reverse("accounts:settings")).content.decode()
    assert f"Buying by post opens on {opens}" in settings_page


def test_the_settings_page_says_nothing_of_it_once_buying_is_open(client: Client):
    alice = buyer_ready("alice")
    client.force_login(alice.cardholder.user)
    assert "Buying by post opens" not in client.get(reverse("accounts:settings")).content.decode()


def test_the_cooling_off_refusal_says_when_and_links_to_the_settings_page():
    shop = shop_open()
    alice = buyer_ready("alice", linked_ago=timedelta(hours=2))
    refused = post("alice", BUY)
    tick()
    assert outcome_of(refused) == "blocked"
    [email] = mail.outbox
    opens = moment_words(alice.identity.linked_at + timedelta(hours=24))
    assert f"buying by post opens on {opens}" in email.body
    assert "http://127.0.0.1:8000/link/settings/" in email.body
    assert not Order.objects.exists()
    assert _stock(shop.campaign) == 0
    assert replies_to("alice") == [
        "@alice We couldn't take this order for #BuyKindleFireHD. Please check your e-mail."
    ]


def test_near_miss_and_confirmation_in_one_batch_each_get_their_own_answer():
    shop_open()
    buyer_ready("alice")
    order = _pending()
    mail.outbox.clear()
    near = post("alice", f"@{BRAND} #Confirm {order.confirmation_code}")
    right = post("alice", f"@{BRAND} #Confirm{code_in(replies_to('alice')[0])}")
    tick()
    assert (outcome_of(near), outcome_of(right)) == ("near_miss", "confirmed")
    assert len(_hints()) == 1


def test_a_burst_of_near_misses_sends_one_hint_an_hour():
    shop_open()
    buyer_ready("alice")
    for n in range(5):
        post("alice", f"@{BRAND} #BuyKindelFireHD take {n}")
    tick()
    post("alice", f"@{BRAND} #BuyKindleFire")
    tick()

    assert Notification.objects.filter(kind="hint").count() == 1
    assert set(Post.objects.filter(author_handle="alice").values_list("outcome", flat=True)) == {
        "near_miss"
    }
