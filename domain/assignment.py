"""Lead assignment rules: industry specialists first, then the region's owner, else round-robin."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.errors import DomainError


@dataclass(frozen=True)
class AssignmentPolicy:
    by_industry: dict[str, str] = field(default_factory=dict)
    by_region: dict[str, str] = field(default_factory=dict)
    round_robin: tuple[str, ...] = ()

    def choose(self, region: str, industry: str, turn: int) -> tuple[str, str]:
        """Return (owner, rule) for a lead; `turn` is how many leads round-robin has served so far."""
        if industry in self.by_industry:
            return self.by_industry[industry], "industry"
        if region in self.by_region:
            return self.by_region[region], "region"
        if not self.round_robin:
            raise DomainError(f"no owner for region {region!r} / industry {industry!r} and no round-robin list")
        return self.round_robin[turn % len(self.round_robin)], "round_robin"
