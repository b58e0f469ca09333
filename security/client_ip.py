"""The client's address, which a client cannot choose.

`X-Forwarded-For` and `X-Real-IP` are anyone's to write. They are believed only when the direct
peer (REMOTE_ADDR) is one of TRUSTED_PROXIES (CIDRs): then the client is the right-most hop of
X-Forwarded-For that is not itself a trusted proxy (each proxy appends the address it saw, so
hops left of an untrusted one are the client's own claims). Without X-Forwarded-For, a valid
X-Real-IP is taken. Everything in the security package, and the access log, use this address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or bare addresses); a bad one raises ValueError naming it."""
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {value!r} is not an address or CIDR") from None
    return tuple(networks)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class ClientIp:
    """`resolve(meta)`: the client address of a request's META. One per process; the trust
    decision per peer is cached (few distinct proxies, checked on every request)."""

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self.trusted = trusted
        self._peer_trusted: dict[str, bool] = {}
        # (peer, X-Forwarded-For, X-Real-IP) -> client: parsing addresses costs ~10 µs, and a
        # proxy sends the same few header values for a client again and again.
        self._resolved: dict[tuple, str] = {}

    def is_trusted(self, address: str) -> bool:
        known = self._peer_trusted.get(address)
        if known is None:
            ip = _address(address)
            known = ip is not None and any(ip in net for net in self.trusted)
            if len(self._peer_trusted) > 4096:  # addresses are attacker-chosen: stay bounded
                self._peer_trusted.clear()
            self._peer_trusted[address] = known
        return known

    def resolve(self, meta: dict) -> str:
        peer = meta.get("REMOTE_ADDR", "")
        if not self.trusted:
            return peer
        key = (peer, meta.get("HTTP_X_FORWARDED_FOR"), meta.get("HTTP_X_REAL_IP"))
        found = self._resolved.get(key)
        if found is None:
            if len(self._resolved) > 16384:  # header values are attacker-chosen: bounded
                self._resolved.clear()
            found = self._resolved[key] = self._resolve(peer, key[1], key[2])
        return found

    def _resolve(self, peer: str, forwarded: str | None, real_ip: str | None) -> str:
        if not self.is_trusted(peer):
            return peer
        if forwarded:
            client = peer
            for hop in reversed(forwarded.split(",")):
                ip = _address(hop)
                if ip is None:  # garbage: nothing left of it can be believed
                    break
                client = str(ip)
                if not self.is_trusted(client):
                    return client
            return client  # every hop is a trusted proxy: the left-most one
        real = _address(real_ip or "")
        return str(real) if real is not None else peer
