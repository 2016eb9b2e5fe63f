"""Platform adapters behind one contract (``base.PlatformAdapter``), chosen by settings."""

from urllib.parse import urlsplit

from django.conf import settings
from django.utils.module_loading import import_string

from social.platforms.base import PlatformAdapter


def adapter_class_for(platform: str) -> type[PlatformAdapter]:
    """The adapter class configured for ``platform`` in ``HASHCART["PLATFORM_ADAPTERS"]``."""
    try:
        path = settings.HASHCART["PLATFORM_ADAPTERS"][platform]
    except KeyError as exc:
        raise LookupError(f"No adapter is configured for platform {platform!r}.") from exc
    adapter_class: type[PlatformAdapter] = import_string(path)
    return adapter_class


def adapter_for(platform: str) -> PlatformAdapter:
    """The adapter configured for ``platform`` in ``HASHCART["PLATFORM_ADAPTERS"]``."""
    return adapter_class_for(platform)()


def reply_fits(*, platform: str, text: str) -> bool:
    """Whether ``text`` meets ``platform``'s length rule for replies (its adapter's ``fits``)."""
    # A stand-in that does not derive from the contract (a test double) gets its default rule.
    fits = getattr(adapter_class_for(platform), "fits", PlatformAdapter.fits)
    return bool(fits(text))


def post_url(*, platform: str, post_id: str, author_handle: str) -> str:
    """The public web page of a post on ``platform`` (its adapter's ``post_url``); "" for a
    platform without one, an unknown platform, or anything but an http(s) address."""
    try:
        adapter = adapter_class_for(platform)
    except LookupError:
        return ""
    build = getattr(adapter, "post_url", PlatformAdapter.post_url)
    url = str(build(post_id=post_id, author_handle=author_handle))
    # Ids come from the platforms: a link staff click is never anything but a web page (or,
    # for the sandbox network, a page of this site).
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    local = not parts.scheme and not parts.netloc and url.startswith("/")
    return url if local and not url.startswith("//") else ""
