"""Link claims: posts carrying ``#Link<CODE>`` (DESIGN §6), applied by accounts.

Classification makes the claims (``accounts.services.LinkClaim``); ``links_apply`` hands them to
``accounts.services.link_claims_apply`` in the batch's transaction and records its answers
(``linked``, ``link_refused``, ``link_unknown``) as the posts' outcomes. Linking writes a few
rows per claim (the identity, its audit row and e-mail): claims are rare, one per identity.
"""

from accounts.services import LinkClaim, link_claims_apply
from orders.services.decide.batch import Batch


def links_apply(batch: Batch, claims: list[LinkClaim]) -> None:
    if claims:
        batch.outcomes.update(link_claims_apply(claims=claims, now=batch.now))
