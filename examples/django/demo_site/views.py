"""The one view: the settings that are safe to show (never SECRET_KEY)."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse


def index(request: HttpRequest) -> JsonResponse:
    """Non-secret settings as JSON."""
    return JsonResponse(
        {
            "greeting": settings.GREETING,
            "items_per_page": settings.ITEMS_PER_PAGE,
            "debug": settings.DEBUG,
            "allowed_hosts": settings.ALLOWED_HOSTS,
            "secret_key_set": bool(settings.SECRET_KEY),
        }
    )
