"""The SIP phone record as the domain knows it, independent of either API shape."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sipphones.sip.address import Transport  # one enum for the domain and the SIP core


@dataclass(frozen=True)
class ServerSet:
    """One of the (up to) three numbered server sets of a phone."""

    register_server: str = ""
    proxy_server: str = ""
    transport_protocol: Transport | None = None

    @property
    def configured(self) -> bool:
        return bool(self.register_server)


NO_SERVER = ServerSet()  # an unused slot (immutable: one shared value)

SLOTS = (1, 2, 3)

SERVER_FIELDS = ("register_server", "proxy_server", "transport_protocol")


def flat_name(name: str, slot: int) -> str:
    """``register_server`` + slot 2 -> ``register_server2`` (Zoom's legacy naming)."""
    return name if slot == 1 else f"{name}{slot}"


@dataclass(frozen=True)
class SipPhone:
    id: str
    account_id: str
    user_email: str
    user_name: str
    authorization_name: str
    password: str
    domain: str
    servers: tuple[ServerSet, ServerSet, ServerSet]
    registration_expire_time: int = 60
    voice_mail: str = ""
    display_number: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    def server(self, slot: int) -> ServerSet:
        return self.servers[slot - 1]

    def configured_servers(self) -> list[tuple[int, ServerSet]]:
        """The server sets a client would try, in order (slot number, set)."""
        return [(i + 1, s) for i, s in enumerate(self.servers) if s.configured]

    def replace(self, **changes) -> "SipPhone":
        return dataclasses.replace(self, **changes)

    def flat(self) -> dict:
        """Every field in the legacy flat spelling (the storage and CSV shape)."""
        out = {
            "id": self.id,
            "user_email": self.user_email,
            "user_name": self.user_name,
            "authorization_name": self.authorization_name,
            "password": self.password,
            "domain": self.domain,
            "registration_expire_time": self.registration_expire_time,
            "voice_mail": self.voice_mail,
            "display_number": self.display_number,
        }
        for slot in SLOTS:
            s = self.server(slot)
            out[flat_name("register_server", slot)] = s.register_server
            out[flat_name("proxy_server", slot)] = s.proxy_server
            out[flat_name("transport_protocol", slot)] = s.transport_protocol.value if s.transport_protocol else ""
        return out


@dataclass
class PhoneChanges:
    """A validated set of changes: only the keys present are applied (partial update).

    ``scalars`` uses the scalar field names; ``servers`` maps a slot to the server fields given
    for it (a missing key leaves that field as it is).
    """

    scalars: dict[str, object] = field(default_factory=dict)
    servers: dict[int, dict[str, object]] = field(default_factory=dict)

    def apply(self, phone: SipPhone, now: float) -> SipPhone:
        servers = list(phone.servers)
        for slot, fields in self.servers.items():
            servers[slot - 1] = dataclasses.replace(servers[slot - 1], **fields)
        return dataclasses.replace(phone, **self.scalars, servers=tuple(servers), updated_at=now)

    def new_server_sets(self) -> tuple[ServerSet, ServerSet, ServerSet]:
        """The server sets of a new phone: what :meth:`apply` gives on empty sets."""
        given = self.servers
        return (ServerSet(**given[1]) if 1 in given else NO_SERVER,
                ServerSet(**given[2]) if 2 in given else NO_SERVER,
                ServerSet(**given[3]) if 3 in given else NO_SERVER)

    def new_scalars(self) -> dict[str, object]:
        """The scalar fields of a new phone: the required texts empty unless given."""
        return {"user_name": "", "authorization_name": "", "password": "", "domain": "", **self.scalars}
