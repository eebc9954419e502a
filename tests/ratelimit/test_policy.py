"""The policy table against Zoom's published rate-limit table (research notes §6.3)."""

from __future__ import annotations

import pytest

from sipphones.accounts.models import Plan
from sipphones.ratelimit.policy import TABLE, Label, Limit, limit_for

# Zoom's table, as published: (per second, per day or None).
ZOOM = {
    "Light": {"free": (4, 6000), "pro": (30, None), "business": (80, None)},
    "Medium": {"free": (2, 2000), "pro": (20, None), "business": (60, None)},
    "Heavy": {"free": (1, 1000), "pro": (10, None), "business": (40, None)},
}


@pytest.mark.parametrize("label", list(Label))
@pytest.mark.parametrize("plan", list(Plan))
def test_values_are_zooms(label, plan):
    per_second, per_day = ZOOM[label.value][plan.value]
    assert limit_for(label, plan) == Limit(per_second, per_day)


def test_table_covers_every_label_and_plan_and_nothing_else():
    assert set(TABLE) == {(label, plan) for label in Label for plan in Plan}


def test_only_the_free_plan_has_daily_quotas():
    for (label, plan), limit in TABLE.items():
        assert (limit.per_day is not None) == (plan is Plan.FREE), (label, plan)


def test_bigger_plans_and_lighter_labels_allow_more():
    order = [Plan.FREE, Plan.PRO, Plan.BUSINESS]
    for label in Label:
        rates = [limit_for(label, p).per_second for p in order]
        assert rates == sorted(rates) and len(set(rates)) == 3, label
    for plan in Plan:
        rates = [limit_for(lb, plan).per_second for lb in (Label.HEAVY, Label.MEDIUM, Label.LIGHT)]
        assert rates == sorted(rates) and len(set(rates)) == 3, plan
