"""The sandbox network's page (development and demo only): pick a handle, post, and watch the
replies addressed to you arrive. Off unless ``HASHCART["SANDBOX_PAGE"]``."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import ApplicationError
from sandbox.gateway import sandbox_authenticate
from sandbox.models import SandboxPost
from sandbox.services import sandbox_post_create, sandbox_timeline, sandbox_user_ensure
from social.models import Platform, PlatformAccount

SESSION_KEY = "sandbox_handle"


def _sandbox_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.HASHCART["SANDBOX_PAGE"]:
            raise Http404("The sandbox is off.")
        return view(request, *args, **kwargs)

    return wrapper


def _context(request: HttpRequest) -> dict[str, Any]:
    handle = request.session.get(SESSION_KEY)
    brand = PlatformAccount.objects.filter(platform=Platform.SANDBOX, enabled=True).first()
    mine = (
        SandboxPost.objects.filter(author__handle__iexact=handle)
        .select_related("author")
        .order_by("-id")[:20]
        if handle
        else []
    )
    return {
        "handle": handle,
        "brand": brand,
        "mine": mine,
        "timeline": list(sandbox_timeline(handle=handle).order_by("-id")[:50]) if handle else [],
    }


@_sandbox_only
@require_GET
def sandbox_home(request: HttpRequest) -> HttpResponse:
    return render(request, "sandbox/sandbox.html", _context(request))


@_sandbox_only
@require_GET
def sandbox_timeline_fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "sandbox/_timeline.html", _context(request))


@_sandbox_only
@require_POST
def sandbox_pick_handle(request: HttpRequest) -> HttpResponse:
    try:
        user = sandbox_user_ensure(handle=request.POST.get("handle", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        request.session[SESSION_KEY] = user.handle
    return redirect("sandbox:home")


@_sandbox_only
@require_POST
def sandbox_post(request: HttpRequest) -> HttpResponse:
    handle = request.session.get(SESSION_KEY)
    if not handle:
        messages.error(request, "Pick a handle first.")
        return redirect("sandbox:home")
    try:
        post = sandbox_post_create(
            handle=handle, text=request.POST.get("text", ""), now=timezone.now()
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Posted (id {post.pk}).")
    return redirect("sandbox:home")


@_sandbox_only
@require_GET
def sandbox_post_page(request: HttpRequest, post_id: int) -> HttpResponse:
    """One post and the replies to it: the sandbox network's page of a post, which the back
    office links as it links a post on X or Mastodon (``SandboxAdapter.post_url``)."""
    post = get_object_or_404(SandboxPost.objects.select_related("author"), pk=post_id)
    replies = post.replies.select_related("author").order_by("id")
    return render(request, "sandbox/post.html", {"post": post, "replies": replies})


@require_POST
def sandbox_bank_authenticate(request: HttpRequest) -> HttpResponse:
    """The sandbox bank's check of a card payment (3-D Secure), behind the two buttons the
    order's authentication page shows with the sandbox gateway (``sandbox/bank.js``): records
    the outcome in the gateway's ledger (``sandbox_authenticate``). Not behind
    ``SANDBOX_PAGE``: it belongs to the sandbox gateway, wherever that is used."""
    outcome = request.POST.get("outcome")
    if outcome not in ("pass", "fail"):
        return JsonResponse({"result": "bad_request"}, status=400)
    result = sandbox_authenticate(secret=request.POST.get("secret", ""), passed=outcome == "pass")
    return JsonResponse({"result": result}, status=404 if result == "unknown" else 200)
