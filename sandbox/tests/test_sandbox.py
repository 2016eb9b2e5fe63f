"""The sandbox network: its service, its commands and its page."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.exceptions import ApplicationError
from sandbox.models import SandboxPost
from sandbox.services import sandbox_post_create, sandbox_timeline, sandbox_user_ensure

pytestmark = pytest.mark.django_db


def test_users_have_stable_ids_and_case_insensitive_handles():
    alice = sandbox_user_ensure(handle="Alice")
    assert sandbox_user_ensure(handle="@alice").pk == alice.pk


@pytest.mark.parametrize("handle", ["", "a b", "x" * 51, "al!ce"])
def test_bad_handles_are_refused(handle):
    with pytest.raises(ApplicationError):
        sandbox_user_ensure(handle=handle)


def test_posts_record_mentions_of_existing_users_only():
    sandbox_user_ensure(handle="Brand")
    post = sandbox_post_create(
        handle="alice", text="@brand @nobody hi, mail me a@b.com", now=timezone.now()
    )
    assert [u.handle for u in post.mentions.all()] == ["Brand"]


def test_a_repost_quotes_the_original_and_an_edit_points_at_the_first_post():
    original = sandbox_post_create(handle="alice", text="@Brand #BuyThing", now=timezone.now())
    repost = sandbox_post_create(
        handle="bob", text="", repost_of_id=original.pk, now=timezone.now()
    )
    assert repost.text == "RT @alice: @Brand #BuyThing"
    edit1 = sandbox_post_create(
        handle="alice", text="v2", edit_of_id=original.pk, now=timezone.now()
    )
    edit2 = sandbox_post_create(handle="alice", text="v3", edit_of_id=edit1.pk, now=timezone.now())
    assert edit2.edit_of_id == original.pk
    with pytest.raises(ApplicationError, match="Only the author"):
        sandbox_post_create(handle="bob", text="x", edit_of_id=original.pk, now=timezone.now())


def test_an_idempotency_key_posts_once():
    first = sandbox_post_create(handle="b", text="hi", idempotency_key="k1", now=timezone.now())
    again = sandbox_post_create(handle="b", text="hi", idempotency_key="k1", now=timezone.now())
    assert first.pk == again.pk
    assert SandboxPost.objects.count() == 1


def test_sandbox_post_prints_the_new_id_and_timeline_lists_posts_to_the_handle(capsys):
    sandbox_user_ensure(handle="alice")
    call_command("sandbox_post", "bob", "@alice first")
    call_command("sandbox_post", "carol", "@alice second\nline")
    call_command("sandbox_post", "carol", "not for alice")
    ids = capsys.readouterr().out.split()
    call_command("sandbox_timeline", "alice")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{ids[0]}\t@bob\t@alice first", f"{ids[1]}\t@carol\t@alice second line"]


def test_sandbox_post_reports_bad_input_clearly():
    with pytest.raises(CommandError, match="needs some text"):
        call_command("sandbox_post", "bob", "   ")
    with pytest.raises(CommandError, match="no sandbox post 999"):
        call_command("sandbox_post", "bob", "hi", "--reply-to", "999")


def test_the_page_picks_a_handle_posts_and_shows_replies_to_it():
    sandbox_user_ensure(handle="bob")
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("sandbox:home"))
    token = str(page.context["csrf_token"])
    client.post(reverse("sandbox:pick_handle"), {"handle": "alice", "csrfmiddlewaretoken": token})
    client.post(reverse("sandbox:post"), {"text": "hello @bob", "csrfmiddlewaretoken": token})
    sandbox_post_create(handle="bob", text="@alice hi back", now=timezone.now())
    fragment = client.get(reverse("sandbox:timeline")).content.decode()
    assert "@alice hi back" in fragment
    assert "hello @bob" in fragment
    assert [p.text for p in sandbox_timeline(handle="bob")] == ["hello @bob"]


def test_the_page_refuses_posts_without_csrf():
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("sandbox:post"), {"text": "x"}).status_code == 403


def test_the_page_is_off_in_production(client, settings):
    settings.HASHCART = {**settings.HASHCART, "SANDBOX_PAGE": False}
    assert client.get(reverse("sandbox:home")).status_code == 404
