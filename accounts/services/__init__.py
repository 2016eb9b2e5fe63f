"""Writes about people: staff logins, cardholders, their identities, cards and controls."""

from accounts.services.cards import (
    address_change,
    card_on_file_lock,
    card_remove,
    card_save,
    default_card,
    pending_card_latest,
    pending_card_save,
    pending_card_store,
)
from accounts.services.controls import (
    consent_give,
    consent_withdraw,
    controls_update,
    identity_unlink,
    purchasing_set_paused,
)
from accounts.services.linking import (
    LinkClaim,
    identity_claim_refusal,
    identity_link_and_tell,
    link_claims_apply,
    link_code_issue,
    link_code_of,
)
from accounts.services.lockdown import (
    Lockdown,
    cardholder_lock_down,
    controls_lock,
    controls_lock_many,
)
from accounts.services.notify import account_email, account_event
from accounts.services.people import (
    MERCHANT_STAFF_GROUP,
    MERCHANT_STAFF_PERMISSIONS,
    card_add,
    cardholder_for_user,
    cardholder_upsert,
    consent_record,
    identity_link,
    merchant_staff_group_ensure,
    operator_upsert,
    staff_user_upsert,
)

__all__ = [
    "MERCHANT_STAFF_GROUP",
    "MERCHANT_STAFF_PERMISSIONS",
    "LinkClaim",
    "Lockdown",
    "account_email",
    "account_event",
    "address_change",
    "card_add",
    "card_on_file_lock",
    "card_remove",
    "card_save",
    "cardholder_for_user",
    "cardholder_lock_down",
    "cardholder_upsert",
    "consent_give",
    "consent_record",
    "consent_withdraw",
    "controls_lock",
    "controls_lock_many",
    "controls_update",
    "default_card",
    "identity_claim_refusal",
    "identity_link",
    "identity_link_and_tell",
    "identity_unlink",
    "link_claims_apply",
    "link_code_issue",
    "link_code_of",
    "merchant_staff_group_ensure",
    "operator_upsert",
    "pending_card_latest",
    "pending_card_save",
    "pending_card_store",
    "purchasing_set_paused",
    "staff_user_upsert",
]
