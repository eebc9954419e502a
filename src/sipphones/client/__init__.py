"""A Python client for Zoom's SIP phone API, and for sipphones serving it.

```python
from sipphones.client import SipPhonesClient

with SipPhonesClient(base_url="http://127.0.0.1:8000/v2") as zoom:  # credentials from ZOOM_* variables
    phone = zoom.legacy_create_phone({"user_email": "alice@example.com", ...})
    for p in zoom.iter_phones():
        print(p["phone_id"], p["user_email"])
```

``SipPhonesClient`` blocks; ``AsyncSipPhonesClient`` has the same methods as coroutines (and
``async for`` iterators). Results are the service's JSON as dicts, typed in
``sipphones.client.models``; errors are ``sipphones.client.errors``. The retry rules are in
``sipphones.client._retry``'s docstring (429 always; connection failures always; read failures
and 502/503/504 only for GET/PATCH/DELETE, never for a POST that may have been carried out).
"""

from sipphones.client._async import AsyncSipPhonesClient
from sipphones.client._core import ZOOM_API_BASE_URL, ZOOM_TOKEN_URL
from sipphones.client._retry import RetryEvent
from sipphones.client._sync import SipPhonesClient
from sipphones.client.errors import (
    AuthenticationError, ConfigurationError, FieldError, RateLimitError, SipPhonesError, TransportError, ZoomAPIError,
)
from sipphones.client.models import (
    CreatedUser, CurrentPhone, CurrentPhoneFields, CurrentPhonePage, LegacyPhone, LegacyPhoneFields, LegacyPhonePage,
    PhoneStatus, PhoneStatusPage, ServerSet, User, UserPage,
)

__all__ = [
    "AsyncSipPhonesClient", "AuthenticationError", "ConfigurationError", "CreatedUser", "CurrentPhone",
    "CurrentPhoneFields", "CurrentPhonePage", "FieldError", "LegacyPhone", "LegacyPhoneFields", "LegacyPhonePage",
    "PhoneStatus", "PhoneStatusPage", "RateLimitError", "RetryEvent", "ServerSet", "SipPhonesClient", "SipPhonesError",
    "TransportError", "User", "UserPage", "ZOOM_API_BASE_URL", "ZOOM_TOKEN_URL", "ZoomAPIError",
]
