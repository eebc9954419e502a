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
    # The stored row's version: 1 when created, one more with every write of the row (the store
    # bumps it; ``Repository.phone_versions``). A phone read from the store carries the version read.
    # Bookkeeping, not content: two phones with the same fields are equal whatever their versions.
    version: int = field(default=1, compare=False)

    def server(self, slot: int) -> ServerSet:
        return self.servers[slot - 1]

    def configured_servers(self) -> list[tuple[int, ServerSet]]:
        """The server sets a client would try, in order (slot number, set)."""
        return [(i + 1, s) for i, s in enumerate(self.servers) if s.configured]

    def replace(self, **changes) -> "SipPhone":
        return dataclasses.replace(self, **changes)


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
