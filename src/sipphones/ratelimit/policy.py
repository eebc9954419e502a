"""Zoom's published rate-limit table (Meetings API; the SIP phone and user endpoints use it).

Limits are per account (shared by all of its apps), per rate-limit label and per plan:

| Label  | Free              | Pro   | Business+ |
|--------|-------------------|-------|-----------|
| Light  | 4/s, 6,000/day    | 30/s  | 80/s      |
| Medium | 2/s, 2,000/day    | 20/s  | 60/s      |
| Heavy  | 1/s, 1,000/day    | 10/s  | 40/s      |

Only the Free plan has daily quotas for these labels; they reset at 00:00 UTC. (Zoom's Pro and
Business+ daily quotas apply to Heavy and Resource-intensive APIs *together* — 30,000 and 60,000 a
day — and no endpoint of this service is labelled that way, so they are not modelled.)

Labels of this service's endpoints: every list is Medium; create, update and delete are Light
(both SIP phone sets; ``GET /v2/users`` is Medium and ``POST``/``DELETE`` users are Light, as Zoom
labels its Users API).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sipphones.accounts.models import Plan


class Label(StrEnum):
    """Zoom's rate-limit label of an endpoint; the value is what ``X-RateLimit-Category`` says."""

    LIGHT = "Light"
    MEDIUM = "Medium"
    HEAVY = "Heavy"


@dataclass(frozen=True)
class Limit:
    per_second: int
    per_day: int | None  # None: no daily quota on this plan


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
