"""Zoom's published Meetings-API rate-limit table (the SIP phone endpoints use Light and Medium).

| Label  | Free              | Pro   | Business+ |
|--------|-------------------|-------|-----------|
| Light  | 4/s, 6,000/day    | 30/s  | 80/s      |
| Medium | 2/s, 2,000/day    | 20/s  | 60/s      |
| Heavy  | 1/s, 1,000/day    | 10/s  | 40/s      |

Daily quotas reset at 00:00 UTC. Pro and Business have no daily quota for Light/Medium.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sipphones.accounts.models import Plan


class Label(StrEnum):
    LIGHT = "Light"
    MEDIUM = "Medium"
    HEAVY = "Heavy"


@dataclass(frozen=True)
class Limit:
    per_second: int
    per_day: int | None


TABLE: dict[tuple[Label, Plan], Limit] = {
    (Label.LIGHT, Plan.FREE): Limit(4, 6000),
    (Label.LIGHT, Plan.PRO): Limit(30, None),
    (Label.LIGHT, Plan.BUSINESS): Limit(80, None),
    (Label.MEDIUM, Plan.FREE): Limit(2, 2000),
    (Label.MEDIUM, Plan.PRO): Limit(20, None),
    (Label.MEDIUM, Plan.BUSINESS): Limit(60, None),
    (Label.HEAVY, Plan.FREE): Limit(1, 1000),
    (Label.HEAVY, Plan.PRO): Limit(10, None),
    (Label.HEAVY, Plan.BUSINESS): Limit(40, None),
}


def limit_for(label: Label, plan: Plan) -> Limit:
    return TABLE[(label, plan)]
