"""Carrier webhooks: tracking pushed by the carrier, verified by its signature (DESIGN §7).

The carrier named in the URL (a key of ``HASHCART["CARRIERS"]``) verifies the request and reads
it (``Carrier.webhook_verify``, ``Carrier.webhook_tracking``): the request is trusted only when
the carrier's signature over the raw body matches the shared secret; anything else (a signature
header that is not even ASCII included, or a carrier that is not configured) is refused with 400
and changes nothing. The update goes through the same ``shipment_track`` as polling, so a
repeated delivery changes nothing twice. It applies only to a label Hashcart bought from that
carrier, found by the carrier's own reference (the sandbox's ``reference``, EasyPost's tracker
``shipment_id``), or a return's label bought the same way (``return_track``); an update about
any other shipment is acknowledged and ignored.
"""

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fulfillment.carriers import carrier_for
from fulfillment.services import shipment_track
from fulfillment.services.returns import return_track
from fulfillment.services.tracking import shipment_for_carrier_update
from orders.services.returns import return_for_carrier_update


@csrf_exempt  # the carrier signs the request instead; verified before anything is read
@require_POST
def carrier_webhook(request: HttpRequest, carrier: str) -> HttpResponse:
    try:
        verifier = carrier_for(carrier)
    except LookupError:
        return HttpResponse("bad signature", status=400)
    if not verifier.webhook_verify(body=request.body, headers=request.headers):
        return HttpResponse("bad signature", status=400)
    try:
        pushed = verifier.webhook_tracking(body=request.body)
    except (AttributeError, KeyError, TypeError, ValueError):
        return HttpResponse("unreadable update", status=400)
    # The labels Hashcart bought from this carrier only, by the carrier's reference: a tracking
    # number typed in by a merchant (or for another carrier) may collide with this one's.
    shipment_id = shipment_for_carrier_update(
        carrier=carrier, reference=pushed.reference, tracking_number=pushed.tracking_number
    )
    if shipment_id is not None:
        shipment_track(
            shipment_id=shipment_id, now=timezone.now(), updates=pushed.updates, source="webhook"
        )
        return HttpResponse(status=200)
    # Or a return on its way back, matched the same way (``orders.services.returns``).
    return_id = return_for_carrier_update(
        carrier=carrier, reference=pushed.reference, tracking_number=pushed.tracking_number
    )
    if return_id is not None:
        return_track(return_id=return_id, now=timezone.now(), updates=pushed.updates)
    return HttpResponse(status=200)
