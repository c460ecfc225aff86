"""The 24-hours-a-day rule with two process-tier replicas on one PostgreSQL database: creates and offline batches
for one worker's day, fired at once and spread by the balancer over both replicas, never put more than 24 hours on
the day (the day is locked in the shared database, not in one process's memory)."""

from __future__ import annotations

from tests.experience.test_entry_rules import pile_onto_one_day
from tests.support.cluster import Cluster
from tests.support.days import a_day_of_its_own


def test_two_process_replicas_never_put_more_than_24_hours_on_a_day(cluster: Cluster) -> None:
    assert len(cluster.replicas["process"]) == 2
    pile_onto_one_day(cluster, "wrk_e1001", a_day_of_its_own())
