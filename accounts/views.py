"""The cardholder's pages: the opt-in wizard at /link/ and the settings page (DESIGN §6, §10.1).

Thin entry points: forms validate, services write, selectors read. The settings page also shows
the cardholder's orders, with a cancel button for a pending one: a section the orders app renders
(its template tag ``orders_cardholder``), and lines of the account's log from the sources in
``HASHCART["CARDHOLDER_LOG_SOURCES"]`` (orders' events): accounts does not import orders.
"""

import json
import re
from typing import Any

import stripe
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services, stripe_vault
from accounts.forms import AddressForm, CardForm, ConsentForm, ControlsForm, PreferencesForm
from accounts.models import ADDRESS_FIELDS, Cardholder, LinkCode, User
from accounts.services.preferences import option_preferences_set
from accounts.vault import card_vault
from core.exceptions import ApplicationError
from core.when import moment_words
from social.models import Platform


def _cardholder(request: HttpRequest) -> Cardholder:
    user = request.user
    assert isinstance(user, User)  # noqa: S101 (login_required ran)
    return services.cardholder_for_user(user=user)


def _progress(request: HttpRequest, cardholder: Cardholder) -> selectors.LinkProgress:
    return selectors.link_progress(
        cardholder=cardholder, card_pending=services.pending_card_latest(cardholder) is not None
    )


def _posted(request: HttpRequest) -> Any:
    """The form data of a POST (even an empty one, which must fail validation), else None."""
    return request.POST if request.method == "POST" else None


def _next(request: HttpRequest, cardholder: Cardholder) -> HttpResponse:
    step = _progress(request, cardholder).next_step
    return redirect(step.url_name if step else "accounts:settings")


@login_required
@require_GET
def link(request: HttpRequest) -> HttpResponse:
    """``?campaign=<hashtag>``: the offer the visitor came to buy (an invitation's link),
    named on the page."""
    progress = _progress(request, _cardholder(request))
    return render(
        request,
        "accounts/link.html",
        {
            "progress": progress,
            "campaign": _campaign_asked(request),
            **_cooling(progress),
        },
    )


_HASHTAG_ASKED = re.compile(r"\w{1,100}")


def _campaign_asked(request: HttpRequest) -> str:
    """The ``campaign`` query parameter if it is a hashtag (letters, digits, underscores) that
    came with our mark (``m``: the invitation's link, ``selectors.campaign_link_mark``), else
    "": the page repeats it, so nobody else can choose what it says."""
    asked = request.GET.get("campaign", "").lstrip("#")
    if not _HASHTAG_ASKED.fullmatch(asked):
        return ""
    return asked if selectors.campaign_link_marked(asked, request.GET.get("m", "")) else ""


def _cooling(progress: selectors.LinkProgress) -> dict[str, Any]:
    """When buying by post opens (in words), for the pages that say it before it bites."""
    opens = selectors.buying_opens_at(progress=progress, now=timezone.now())
    return {
        "buying_opens": moment_words(opens) if opens is not None else "",
        "cooling_off": settings.HASHCART["COOLING_OFF_HOURS"],
    }


@login_required
@require_http_methods(["GET", "POST"])
def link_identity(request: HttpRequest) -> HttpResponse:
    """Shows a one-time ``#Link<CODE>`` to post (the page follows it by itself), and X's
    connect button when X is configured."""
    cardholder = _cardholder(request)
    platforms = selectors.link_platforms()
    platform = request.GET.get("platform") or (platforms[0] if platforms else "")
    if platform and platform not in platforms:
        raise Http404("No brand account on that platform.")
    code, error = None, ""
    brand = selectors.brand_account(platform=platform) if platform else None
    if brand is not None:
        try:
            code = services.link_code_issue(
                cardholder=cardholder, platform=platform, now=timezone.now()
            )
        except ApplicationError as exc:
            error = exc.message
    return render(
        request,
        "accounts/link_identity.html",
        {
            "progress": _progress(request, cardholder),
            "platforms": platforms,
            # Each platform by its name ("Bluesky"), for the choice of where to post the code.
            "platform_choices": [(p, Platform(p).label) for p in platforms],
            "platform": platform,
            "brand": brand,
            "code": code,
            "error": error,
            "x_enabled": bool(settings.SOCIALACCOUNT_PROVIDERS["twitter_oauth2"]["APPS"]),
        },
    )


@login_required
@require_GET
def link_identity_status(request: HttpRequest, code: str) -> JsonResponse:
    """The state of one of the cardholder's link codes, polled by the identity page."""
    link_code = get_object_or_404(
        LinkCode.objects.select_related("identity"), code=code, cardholder=_cardholder(request)
    )
    state, message = selectors.link_code_state(link_code)
    return JsonResponse({"state": state, "message": message})


@sensitive_variables("form")
@sensitive_post_parameters("number")
@login_required
@require_http_methods(["GET", "POST"])
def link_card(request: HttpRequest) -> HttpResponse:
    """The card step: the vault's card form (the sandbox's test cards), or Stripe's Payment
    Element for a hosted vault."""
    cardholder = _cardholder(request)
    vault = card_vault()
    if vault.hosted:
        return _link_card_stripe(request, cardholder)
    form = CardForm(_posted(request), today=timezone.localdate(), number_help=vault.number_help)
    if request.method == "POST" and form.is_valid():
        try:
            vaulted = vault.tokenize(
                number=form.cleaned_data["number"],
                exp_month=form.cleaned_data["exp_month"],
                exp_year=form.cleaned_data["exp_year"],
            )
        except ApplicationError as exc:
            form.add_error("number", exc.message)
        else:
            services.pending_card_store(
                cardholder=cardholder,
                gateway=vault.name,
                reference=vaulted.token,
                card=vaulted,
                now=timezone.now(),
            )
            return redirect("accounts:link_address")
    return render(
        request,
        "accounts/link_card.html",
        {"progress": _progress(request, cardholder), "form": form},
    )


def _link_card_stripe(request: HttpRequest, cardholder: Cardholder) -> HttpResponse:
    if request.method == "POST":
        raise Http404("The card goes to Stripe, not here.")
    return render(
        request,
        "accounts/link_card_stripe.html",
        {
            "progress": _progress(request, cardholder),
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "client_secret": stripe_vault.setup_intent_start(cardholder=cardholder),
            "return_url": request.build_absolute_uri(reverse("accounts:link_card_stripe_return")),
        },
    )


@login_required
@require_GET
def link_card_stripe_return(request: HttpRequest) -> HttpResponse:
    """Stripe sends the cardholder back here after the Payment Element saved the card."""
    cardholder = _cardholder(request)
    setup_intent_id = request.GET.get("setup_intent", "")
    try:
        owner_id, vaulted = stripe_vault.setup_intent_card(setup_intent_id=setup_intent_id)
        if owner_id != cardholder.pk:
            raise ApplicationError("That card belongs to another session: please try again.")
    except (ApplicationError, stripe.StripeError) as exc:
        messages.error(request, getattr(exc, "message", "") or "Stripe could not save the card.")
        return redirect("accounts:link_card")
    services.pending_card_store(
        cardholder=cardholder,
        gateway="stripe",
        reference=setup_intent_id,
        card=vaulted,
        now=timezone.now(),
    )
    return redirect("accounts:link_address")


@csrf_exempt  # Stripe signs the request instead; the signature is verified below
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """``setup_intent.succeeded``: keep the card even if the cardholder never came back."""
    try:
        saved = stripe_vault.webhook_setup_intent(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponse(status=400)
    if saved is not None:
        cardholder_id, vaulted = saved
        cardholder = Cardholder.objects.filter(pk=cardholder_id).first()
        if cardholder is not None:
            event = json.loads(request.body)
            services.pending_card_store(
                cardholder=cardholder,
                gateway="stripe",
                reference=event["data"]["object"]["id"],
                card=vaulted,
                now=timezone.now(),
            )
    return HttpResponse(status=200)


@login_required
@require_http_methods(["GET", "POST"])
def link_address(request: HttpRequest) -> HttpResponse:
    """The billing address; saved with the card just added, or as a change of address."""
    cardholder = _cardholder(request)
    pending = services.pending_card_latest(cardholder)
    card = services.default_card(cardholder)
    if pending is None and card is None:
        messages.info(request, "Add a card first: the address is the card's billing address.")
        return redirect("accounts:link_card")
    # A new card replacing one (or one removed before) starts from the address on file: the
    # cardholder confirms it, or changes it, rather than typing it again.
    saved = services.address_on_file(cardholder)
    initial = {name: getattr(saved, name) for name in ADDRESS_FIELDS} if saved else {}
    form = AddressForm(_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        try:
            if pending is not None:
                services.pending_card_save(
                    cardholder=cardholder, pending=pending, address=form.cleaned_data, now=now
                )
                messages.success(request, "Your card is saved.")
            else:
                services.address_change(cardholder=cardholder, address=form.cleaned_data, now=now)
                messages.success(request, "Your address is saved.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return _next(request, cardholder)
    return render(
        request,
        "accounts/link_address.html",
        {
            "progress": _progress(request, cardholder),
            "form": form,
            "pending": pending,
            "reused": bool(initial) and pending is not None,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def link_consent(request: HttpRequest) -> HttpResponse:
    cardholder = _cardholder(request)
    form = ConsentForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        services.consent_give(cardholder=cardholder, now=timezone.now())
        return _next(request, cardholder)
    progress = _progress(request, cardholder)
    return render(
        request,
        "accounts/link_consent.html",
        {
            "progress": progress,
            "form": form,
            "terms_version": settings.HASHCART["TERMS_VERSION"],
            "window": settings.HASHCART["CONFIRMATION_WINDOW_MINUTES"],
            **_cooling(progress),
        },
    )


@login_required
@require_GET
def account_settings(request: HttpRequest) -> HttpResponse:
    return _settings_page(request, _cardholder(request))


def _settings_page(
    request: HttpRequest,
    cardholder: Cardholder,
    *,
    controls_form: ControlsForm | None = None,
) -> HttpResponse:
    """The settings page; ``controls_form``: the limits as the cardholder typed them, refused."""
    controls = cardholder.controls
    history: list[tuple[Any, str, str]] = [
        (e.created_at, e.get_kind_display(), e.summary)
        for e in selectors.account_events(cardholder=cardholder)
    ]
    for source in settings.HASHCART["CARDHOLDER_LOG_SOURCES"]:
        history += import_string(source)(cardholder_id=cardholder.pk)
    history.sort(key=lambda row: row[0], reverse=True)
    progress = _progress(request, cardholder)
    return render(
        request,
        "accounts/settings.html",
        {
            "progress": progress,
            **_cooling(progress),
            "cardholder": cardholder,
            "controls": controls,
            "controls_form": controls_form
            or ControlsForm(
                initial={
                    "per_order_cap": controls.per_order_cap,
                    "per_day_cap": controls.per_day_cap,
                    "email_confirm_above": controls.email_confirm_above,
                }
            ),
            "preferences_form": PreferencesForm.from_saved(
                selectors.option_preferences(cardholder_ids=[cardholder.pk]).get(cardholder.pk, {})
            ),
            "cards": cardholder.cards.filter(removed_at__isnull=True).order_by(
                "-is_default", "-id"
            ),
            "history": history[:50],
        },
    )


@login_required
@require_GET
def card_remove_confirm(request: HttpRequest, card_id: int) -> HttpResponse:
    """Asks before a card is removed (what it does to orders not yet charged); the button
    posts to ``settings_action`` ``remove-card``. Another's card, or a removed one, is a 404."""
    cardholder = _cardholder(request)
    card = get_object_or_404(cardholder.cards, pk=card_id, removed_at__isnull=True)
    return render(
        request,
        "accounts/card_remove.html",
        {
            "card": card,
            "only_card": not cardholder.cards.filter(removed_at__isnull=True)
            .exclude(pk=card.pk)
            .exists(),
        },
    )


@login_required
@require_POST
def settings_action(request: HttpRequest, action: str) -> HttpResponse:
    """One POST endpoint per settings action; each calls one service."""
    cardholder = _cardholder(request)
    now = timezone.now()
    try:
        if action == "unlink":
            services.identity_unlink(
                cardholder=cardholder, identity_id=int(request.POST["identity"]), now=now
            )
            messages.success(request, "The account is unlinked.")
        elif action == "remove-card":
            services.card_remove(cardholder=cardholder, card_id=int(request.POST["card"]), now=now)
            messages.success(request, "The card is removed.")
        elif action in ("pause", "resume"):
            services.purchasing_set_paused(cardholder=cardholder, paused=action == "pause", now=now)
            messages.success(
                request, "Buying by post is paused." if action == "pause" else "Buying resumed."
            )
        elif action == "withdraw-consent":
            services.consent_withdraw(cardholder=cardholder, now=now)
            messages.success(
                request,
                "Your consent is withdrawn: posts buy nothing until you agree to the terms again.",
            )
        elif action == "controls":
            form = ControlsForm(request.POST)
            if not form.is_valid():
                # The page again, with what was typed and each error by its field.
                return _settings_page(request, cardholder, controls_form=form)
            services.controls_update(cardholder=cardholder, now=now, **form.cleaned_data)
            messages.success(request, "Your limits are saved.")
        elif action == "preferences":
            prefs = PreferencesForm(request.POST)
            if not prefs.is_valid():
                for errors in prefs.errors.values():
                    for error in errors:
                        messages.error(request, str(error))
                return redirect("accounts:settings")
            option_preferences_set(cardholder=cardholder, preferences=prefs.preferences())
            messages.success(request, "Your usual choices are saved.")
        else:
            raise Http404("No such action.")
    except (KeyError, ValueError):
        messages.error(request, "That request was incomplete.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:settings")
