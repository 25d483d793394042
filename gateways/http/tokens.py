"""Bearer tokens, configured hashed: who a token belongs to and which role they have.

The tokens file is JSON: {"tokens": [{"sha256": "<hex of the token>", "name": "李娜", "role": "sales"}]}.
Print a token's hash with `python -m gateways.http.tokens hash TOKEN`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from services.strict_json import DuplicateKey, loads_compact

ROLES = ("admin", "sales", "service", "analyst", "subscriber", "monitor")
TOKENS_FILE_VARIABLE = "CRM_API_TOKENS_FILE"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class TokenConfigError(ValueError):
    """The tokens file is missing or malformed."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: their name (recorded as the actor of their commands) and role."""

    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRegistry:
    """Maps the sha256 of a bearer token to its principal; compares in constant time."""

    def __init__(self, entries: Iterable[tuple[str, Principal]]) -> None:
        self._entries = [(_check_hash(digest), _check_principal(principal)) for digest, principal in entries]

    @classmethod
    def from_file(cls, path: str | Path) -> TokenRegistry:
        try:
            data = loads_compact(Path(path).read_bytes())
            tokens = data["tokens"]
            return cls((t["sha256"], Principal(t["name"], t["role"])) for t in tokens)
        except OSError as error:
            raise TokenConfigError(f"cannot read tokens file {path}: {error.strerror}") from None
        except (orjson.JSONDecodeError, DuplicateKey, KeyError, TypeError) as error:
            raise TokenConfigError(
                f"tokens file {path} must be JSON like "
                '{"tokens": [{"sha256": "...", "name": "...", "role": "sales"}]} '
                f"({type(error).__name__}: {error})"
            ) from None

    @classmethod
    def from_env(cls) -> TokenRegistry:
        path = os.environ.get(TOKENS_FILE_VARIABLE)
        if not path:
            raise TokenConfigError(f"set {TOKENS_FILE_VARIABLE} to the tokens file (or pass --tokens-file)")
        return cls.from_file(path)

    def authenticate(self, token: str) -> Principal | None:
        """The principal whose token this is, or None; every entry is compared, in constant time."""
        digest = hash_token(token)
        found = None
        for expected, principal in self._entries:
            if hmac.compare_digest(digest, expected):
                found = principal
        return found


def _check_hash(digest: object) -> str:
    if not isinstance(digest, str) or not _HEX_SHA256.fullmatch(digest):
        raise TokenConfigError("each token's sha256 must be 64 lower-case hex digits")
    return digest


def _check_principal(principal: Principal) -> Principal:
    if not isinstance(principal.name, str) or not principal.name.strip():
        raise TokenConfigError("each token needs a non-empty name")
    if principal.role not in ROLES:
        raise TokenConfigError(f"unknown role {principal.role!r}; roles are: {', '.join(ROLES)}")
    return principal


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "hash":
        print("usage: python -m gateways.http.tokens hash TOKEN", file=sys.stderr)
        return 2
    print(hash_token(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
