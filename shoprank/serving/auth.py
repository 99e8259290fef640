"""Who may call what: ``Authorization: Bearer KEY`` checked against the home folder's key store."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shoprank.keys import ApiKey, KeyStore
from shoprank.serving.errors import ApiError

bearer = HTTPBearer(auto_error=False, description="an API key from 'shoprank keys create'")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    """The caller: a key record, or the open-access demo mode."""

    key: ApiKey | None
    open_access: bool = False
    local: bool = False  # the command line of this machine (shoprank.local): reads only

    @property
    def key_id(self) -> str:
        return self.key.id if self.key else "local" if self.local else "open"

    def can(self, action: str, shop: str | None) -> bool:
        """``action`` "any" is what every valid key may do (list the shops it can read)."""
        if self.open_access:
            return True
        if self.local:
            return action in ("read", "any")
        if self.key is None:
            return False
        return action == "any" or self.key.allows(action, shop)


def authenticate(keys: KeyStore, open_access: bool, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or not credentials.credentials:
        if open_access:
            return Principal(None, open_access=True)
        raise ApiError(401, "missing_key", "send an API key as 'Authorization: Bearer KEY'", headers=_CHALLENGE)
    record = keys.verify(credentials.credentials)
    if record is None:
        if open_access:
            return Principal(None, open_access=True)
        raise ApiError(401, "invalid_key", "the API key is unknown, revoked or expired", headers=_CHALLENGE)
    return Principal(record)


def require(action: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller must hold a key allowing ``action`` on the path's shop (if any)."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        local = getattr(request.app.state, "local_token", None)
        if local and credentials is not None and hmac.compare_digest(credentials.credentials.encode(), local.encode()):
            principal = Principal(None, local=True)
        else:
            principal = authenticate(request.app.state.keys, request.app.state.open_access, credentials)
        shop = request.path_params.get("shop")
        if not principal.can(action, shop):
            scope = principal.key.scope if principal.key else "none"
            where = f" on shop '{shop}'" if shop else ""
            raise ApiError(403, "forbidden", f"this key (scope '{scope}') may not {action}{where}")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{action}"
    return dependency
