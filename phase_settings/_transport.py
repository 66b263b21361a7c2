"""Names that used to live here, for callers not yet moved: token forms are in ``_tokens``,
URLs in ``_urls``, the HTTP transport in ``_http`` and environment parsing in ``_config``.

No HTTP library is imported here, so importing this module keeps ``import phase_settings``
light.
"""

from ._config import env_flag, parse_verify_ssl
from ._tokens import TOKEN_FORMS, auth_header, token_fingerprint, token_kind
from ._urls import DEFAULT_HOST, api_base, is_loopback

__all__ = [
    "DEFAULT_HOST",
    "TOKEN_FORMS",
    "api_base",
    "auth_header",
    "env_flag",
    "is_loopback",
    "parse_verify_ssl",
    "token_fingerprint",
    "token_kind",
]
