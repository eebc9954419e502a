"""The repository's user-managed OAuth records (SQLAlchemy Core): authorization codes and grants.
Exchanging a code is one transaction (the code marked used, the user's earlier grants of the app
revoked, the new grant written), so that two requests with one code cannot both win."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from sipphones.auth.grants import AuthorizationCode, Grant
from sipphones.repository import MissingReference
from sipphones.storage import schema as t
from sipphones.storage.raw.runner import matchable as _matchable
from sipphones.storage.raw.runner import retrying

# Used and expired codes are kept this long after they expire (a replay within it is recognised
# as one and revokes the grant the code gave), then purged by the next new code.
CODE_RETENTION_S = 3600.0


def _code(row) -> AuthorizationCode:
    return AuthorizationCode(code_hash=row.code_hash, client_id=row.client_id, account_id=row.account_id,
                             user_id=row.user_id, redirect_uri=row.redirect_uri, scopes=tuple(row.scopes.split()),
                             challenge=row.challenge, challenge_method=row.challenge_method,
                             created_at=row.created_at, expires_at=row.expires_at, used_at=row.used_at,
                             grant_id=row.grant_id)


def _grant(row) -> Grant:
    return Grant(id=row.id, client_id=row.client_id, account_id=row.account_id, user_id=row.user_id,
                 scopes=tuple(row.scopes.split()), refresh_hash=row.refresh_hash,
                 refresh_expires_at=row.refresh_expires_at, created_at=row.created_at, revoked_at=row.revoked_at)


class GrantStore:
    engine: Any

    async def add_authorization_code(self, code: AuthorizationCode, limit: int) -> bool:
        """False (and nothing stored) when the app has ``limit`` codes kept already."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(t.oauth_codes).where(
                    t.oauth_codes.c.expires_at < code.created_at - CODE_RETENTION_S))
                kept = (await conn.execute(select(func.count()).select_from(t.oauth_codes).where(
                    t.oauth_codes.c.client_id == code.client_id))).scalar_one()
                if kept >= limit:
                    return False
                await conn.execute(insert(t.oauth_codes).values(
                    code_hash=code.code_hash, client_id=code.client_id, account_id=code.account_id,
                    user_id=code.user_id, redirect_uri=code.redirect_uri, scopes=" ".join(code.scopes),
                    challenge=code.challenge, challenge_method=code.challenge_method, created_at=code.created_at,
                    expires_at=code.expires_at, used_at=None, grant_id=None))
        except IntegrityError as e:  # the user or the app went away meanwhile
            raise MissingReference(str(e.orig)) from None
        return True

    async def get_authorization_code(self, code_hash: str) -> AuthorizationCode | None:
        if not _matchable(code_hash):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.oauth_codes).where(t.oauth_codes.c.code_hash == code_hash))).first()
        return _code(row) if row else None

    async def redeem_authorization_code(self, code_hash: str, grant: Grant) -> bool:
        """Mark the code used for ``grant``, revoke the user's other grants of the app and write
        ``grant``: all or nothing. False if the code was used already (another request won)."""
        return await retrying(functools.partial(self._redeem, code_hash, grant))

    async def _redeem(self, code_hash: str, grant: Grant) -> bool:
        c, g = t.oauth_codes, t.oauth_grants
        try:
            async with self.engine.begin() as conn:
                won = await conn.execute(update(c).where(c.c.code_hash == code_hash, c.c.used_at.is_(None)).values(
                    used_at=grant.created_at, grant_id=grant.id))
                if won.rowcount != 1:
                    return False
                mine = (g.c.client_id == grant.client_id, g.c.user_id == grant.user_id)
                # Revoked grants are kept a while (a refresh with one is told it was revoked), then dropped.
                await conn.execute(delete(g).where(*mine, g.c.revoked_at < grant.created_at - CODE_RETENTION_S))
                await conn.execute(update(g).where(*mine, g.c.revoked_at.is_(None)).values(
                    revoked_at=grant.created_at))
                await conn.execute(insert(g).values(
                    id=grant.id, client_id=grant.client_id, account_id=grant.account_id, user_id=grant.user_id,
                    scopes=" ".join(grant.scopes), refresh_hash=grant.refresh_hash,
                    refresh_expires_at=grant.refresh_expires_at, created_at=grant.created_at, revoked_at=None))
        except IntegrityError as e:
            raise MissingReference(str(e.orig)) from None
        return True

    async def get_grant(self, grant_id: str) -> Grant | None:
        if not _matchable(grant_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.oauth_grants).where(t.oauth_grants.c.id == grant_id))).first()
        return _grant(row) if row else None

    async def rotate_refresh_token(self, grant_id: str, old_hash: str, new_hash: str, expires_at: float) -> bool:
        """Replace the grant's refresh secret, if it is still ``old_hash`` and not revoked: of two
        refreshes with one token, one wins."""
        g = t.oauth_grants
        async with self.engine.begin() as conn:
            res = await conn.execute(update(g).where(g.c.id == grant_id, g.c.refresh_hash == old_hash,
                                                     g.c.revoked_at.is_(None)).values(
                refresh_hash=new_hash, refresh_expires_at=expires_at))
        return res.rowcount == 1

    async def revoke_grant(self, grant_id: str, now: float) -> bool:
        """True if the grant was active and is revoked now."""
        g = t.oauth_grants
        if not _matchable(grant_id):
            return False
        async with self.engine.begin() as conn:
            res = await conn.execute(update(g).where(g.c.id == grant_id, g.c.revoked_at.is_(None)).values(
                revoked_at=now))
        return res.rowcount == 1
