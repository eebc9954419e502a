"""From a stored phone to the SIP core's registration configuration: the one adapter, shared by
``sipphones check``, ``sipphones monitor`` and the registration agent.

The SIP core (``sipphones.sip``) knows no phone record; this module applies the rules its
``sipphones.sip.config`` documents (Request-URI and address of record from ``domain`` and
``user_name``, one server set per configured slot, the outbound proxy as a loose ``Route``,
the phones domain's default transport (``UDP``, ``phones.fields``) for a set stored without one, ``Expires`` from ``registration_expire_time``) to a
:class:`~sipphones.phones.models.SipPhone`. Addresses are parsed with the phones domain's
``parse_host``, the grammar the API validated them with.
"""

from __future__ import annotations

from sipphones.phones.fields import DEFAULT_TRANSPORT
from sipphones.phones.models import SipPhone
from sipphones.phones.rules import AddressError, parse_host
from sipphones.sip.address import HostPort, Transport
from sipphones.sip.config import (
    DEFAULT_USER_AGENT, ConfigError, RegistrationConfig, ServerSetConfig,
)

__all__ = ["registration_config"]


def _route_for(proxy: HostPort, transport: Transport) -> str:
    params = ""
    if transport in (Transport.TCP, Transport.TLS):
        params = f";transport={transport.value.lower()}"
    return f"<sip:{proxy}{params};lr>"


def registration_config(phone: SipPhone, *, user_agent: str = DEFAULT_USER_AGENT,
                        expires: int | None = None, stale_contacts: tuple[str, ...] = ()) -> RegistrationConfig:
    """Build the wire facts of ``phone`` (see ``sipphones.sip.config`` for every rule).

    ``expires`` overrides ``registration_expire_time × 60`` (a check may want a short binding);
    ``stale_contacts`` are Contacts an earlier keeper of the phone left at the registrar, removed
    by the first REGISTER of each set (``RegistrationConfig.stale_contacts``).
    Raises :class:`~sipphones.sip.config.ConfigError` when no server set is configured or an
    address does not parse.
    """
    try:
        domain = parse_host(phone.domain, allow_port=False).host
    except AddressError as e:
        raise ConfigError(f"domain: {e}") from None
    sets: list[ServerSetConfig] = []
    for slot, server in phone.configured_servers():
        try:
            register = parse_host(server.register_server)
            proxy = parse_host(server.proxy_server) if server.proxy_server else None
        except AddressError as e:
            raise ConfigError(f"server set {slot}: {e}") from None
        transport = server.transport_protocol or DEFAULT_TRANSPORT
        route = None
        if proxy is not None and (proxy.host, proxy.port) != (register.host, register.port):
            route = _route_for(proxy, transport)
        sets.append(ServerSetConfig(slot=slot, register_server=register, proxy_server=proxy,
                                    transport=transport, route=route))
    if not sets:
        raise ConfigError("no server set is configured")
    return RegistrationConfig(
        user=phone.user_name,
        domain=domain,
        auth_username=phone.authorization_name,
        password=phone.password,
        expires=expires if expires is not None else phone.registration_expire_time * 60,
        server_sets=tuple(sets),
        user_agent=user_agent,
        phone_id=phone.id,
        stale_contacts=stale_contacts,
    )
