"""Usage as daily counts (``usage/daily_counts``), rolled up from generated event drops.

A product-analytics export or a warehouse rollup delivers usage per account (or subscription),
day and feature, and restates recent days as late data arrives. :func:`roll_up_events` writes
that shape from drops :func:`pipelines.lab.generate.generate` wrote: drop N's ``daily_counts.csv``
holds, for every (account, day) its events touched, the counts of every event delivered by
drops up to N (so a late event restates its day, as a rollup would), and the events file is
removed (the drops then deliver the counts shape only). Options give the shapes tools export:
by subscription instead of account, without active users, at another scale (a product that
logs 100 times as many events as the generator).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path


def roll_up_events(landing: Path, run_dates: list[dt.date], *, with_users: bool = True,
                   by_subscription: bool = False, scale: float = 1.0, keep_events: bool = False) -> int:
    """Write ``<drop>/usage/daily_counts.csv`` for each of ``run_dates`` (in order) from the
    drops' ``usage/events.csv``; returns the rows written. ``scale`` multiplies every count
    (rounded half up, at least 1 for a day with events)."""
    from pipelines.warehouse import in_memory

    con = in_memory()
    con.execute("create table seen (account_id varchar, user_id varchar, feature varchar, day date)")
    written = 0
    try:
        for run_date in sorted(run_dates):
            drop = Path(landing) / run_date.isoformat()
            events = drop / "usage" / "events.csv"
            con.execute(f"""
                create or replace temp table night as
                select trim(account_id) as account_id, nullif(trim(user_id), '') as user_id,
                    nullif(lower(trim(feature)), '') as feature, cast(occurred_at as timestamp)::date as day
                from read_csv('{events}', all_varchar = true, header = true)
            """)
            con.execute("insert into seen select * from night")
            key = "subscription_id" if by_subscription else "account_id"
            subscriptions = ""
            if by_subscription:
                subscriptions = f"""
                    , subs as (
                        select account_id, subscription_id, cast(start_date as date) as start_date,
                            coalesce(cast(end_date as date), date '9999-12-31') as end_date
                        from read_csv('{drop / "billing" / "subscriptions.csv"}', all_varchar = true, header = true)
                    ),
                    keyed as (
                        select rolled.*, (
                            select max_by(subs.subscription_id, subs.start_date) from subs
                            where subs.account_id = rolled.account_id and subs.start_date <= rolled.day
                        ) as subscription_id
                        from rolled
                    )"""
            source = "keyed" if by_subscription else "rolled"
            users = ", active_users" if with_users else ""
            path = drop / "usage" / "daily_counts.csv"
            con.execute(f"""
                copy (
                    with touched as (select distinct account_id, day from night),
                    rolled as (
                        select seen.account_id, seen.day, seen.feature,
                            greatest(1, cast(round(count(*) * {scale!r}) as bigint)) as event_count,
                            count(distinct seen.user_id) as active_users
                        from seen inner join touched using (account_id, day)
                        group by all
                    ){subscriptions}
                    select {key}, strftime(day, '%Y-%m-%d') as usage_date, feature, event_count{users}
                    from {source}
                    where {key} is not null
                    order by all
                ) to '{path}' (header, delimiter ',')
            """)
            written += con.execute(f"select count(*) from read_csv('{path}', header = true)").fetchall()[0][0]
            if not keep_events:
                events.unlink()
    finally:
        con.close()
    return written
