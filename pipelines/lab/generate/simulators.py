"""The generator's simulators, one per contract entity, registered by the entity's name.

:data:`SNAPSHOTS` maps each snapshot entity (``source/name`` of :data:`pipelines.contract.ENTITIES`)
to a function that builds its simulator from the simulated :class:`World`; the simulator's
``as_of(day)`` is the full table the source system would export that night (written by
:func:`pipelines.lab.generate.generate` in the contract's columns and types). :data:`STREAMS` names
the entities that are not a nightly snapshot and how they are made. A test checks that every
contract entity has exactly one of the two and that nothing here is unknown to the contract:
adding an entity to the contract means adding its simulator here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from pipelines.lab.generate.accounts import Accounts, accounts_as_of
from pipelines.lab.generate.billing import (
    InvoiceSnapshots,
    Lifecycle,
    SubscriptionSnapshots,
    simulate_invoices,
)
from pipelines.lab.generate.crm import (
    ActivitySnapshots,
    CaseSnapshots,
    NpsSnapshots,
    simulate_activities,
    simulate_cases,
    simulate_nps,
)
from pipelines.lab.generate.timeline import Window


class Snapshot(Protocol):
    def as_of(self, day: int) -> pa.Table: ...


@dataclass(frozen=True)
class World:
    """What every simulator draws from: the simulated accounts and their subscription lives."""

    acc: Accounts
    life: Lifecycle
    window: Window
    seed: int
    #: health components whose data carries no churn signal / a strong one (generate()'s knobs)
    noise_components: frozenset[str] = field(default_factory=frozenset)
    predictive_components: frozenset[str] = field(default_factory=frozenset)


class _AccountSnapshots:
    def __init__(self, acc: Accounts):
        self.acc = acc

    def as_of(self, day: int) -> pa.Table:
        return accounts_as_of(self.acc, day)


#: Snapshot entities: ``{entity: simulator factory}``, in the order the files are written.
SNAPSHOTS: dict[str, Callable[[World], Snapshot]] = {
    "crm/accounts": lambda w: _AccountSnapshots(w.acc),
    "crm/activities": lambda w: ActivitySnapshots(w.acc, simulate_activities(w.acc, w.life, w.window, w.seed)),
    "crm/support_cases": lambda w: CaseSnapshots(
        w.acc, simulate_cases(w.acc, w.life, w.window, w.seed, noise="support" in w.noise_components)),
    "crm/nps_responses": lambda w: NpsSnapshots(
        w.acc, simulate_nps(w.acc, w.life, w.window, w.seed, noise="sentiment" in w.noise_components,
                            predictive="sentiment" in w.predictive_components)),
    "billing/subscriptions": lambda w: SubscriptionSnapshots(w.acc, w.life.periods),
    "billing/invoices": lambda w: InvoiceSnapshots(w.acc, simulate_invoices(w.acc, w.life, w.window, w.seed)),
}

#: Entities that are not a nightly snapshot, and what makes them.
STREAMS: dict[str, str] = {
    "usage/events": "pipelines.lab.generate.usage.UsageSimulator, streamed day by day into each drop by generate()",
    "usage/daily_counts": "pipelines.lab.generate.daily_counts.roll_up_events, rolled up from the drops' usage/events",
}


def snapshot_simulators(world: World, entities: Collection[str]) -> dict[str, Snapshot]:
    """The simulators of the snapshot entities among ``entities`` (qualified names) for ``world``
    (each draws from its own seeded generator: leaving one out changes no other)."""
    return {entity: make(world) for entity, make in SNAPSHOTS.items() if entity in entities}
