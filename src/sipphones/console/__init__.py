"""The admin web console (``/console``): server-rendered pages over the domain services.

``views/`` translate HTTP requests (forms, cookies, redirects) into calls of the existing
services (``phones``, ``accounts``, ``check``, ``provisioning``) and render ``templates/``;
``session`` is the signed session cookie, ``signin`` the sign-in rules (credentials, throttling),
``forms`` the phone form built from the field table (``phones.fields``). Routed by ``routes``
(mounted by ``api.app``); nothing here is on the Zoom routes' path.
"""
