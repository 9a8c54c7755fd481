"""The dashboard's figures, aggregated in SQL against the Airflow metadata DB: one query per panel.

Every query is limited to the DAG ids the caller may read (the auth manager decides) and, if a tag is
given, to the DAGs carrying that tag. The window is `days` whole UTC days ending today, on a run's
`run_after` (set on every run, scheduled or manual; `logical_date` may be empty in Airflow 3).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

FINISHED = ("success", "failed")
MAX_DAYS = 366
NEXT_RUNS_LIMIT = 20


def window_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days - 1` days before today: the window holds today and the days before it."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1)


def _utc_day(column, dialect: str):
    if dialect == "postgresql":  # timestamptz: take the UTC date, whatever the session's time zone
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # sqlite and mysql store UTC already


def summary(session: Session, readable_dag_ids: set[str], days: int = 7, tag: str | None = None,
            now: datetime | None = None) -> dict:
    from airflow.models.dag import DagModel, DagTag
    from airflow.models.dagrun import DagRun

    days = max(1, min(int(days), MAX_DAYS))
    now = now or datetime.now(timezone.utc)
    start = window_start(days, now)
    dialect = session.get_bind().dialect.name
    readable = sorted(readable_dag_ids)
    scope = readable
    if tag:  # resolved once: a plain IN list plans better than a subquery in every panel's query
        scope = sorted(readable_dag_ids & set(session.scalars(select(DagTag.dag_id).where(DagTag.name == tag))))

    def in_scope(column):
        return [column.in_(scope)]

    runs = [*in_scope(DagRun.dag_id), DagRun.run_after >= start, DagRun.run_after <= now]

    day = _utc_day(DagRun.run_after, dialect).label("day")
    per_day_rows = session.execute(
        select(day, DagRun.state, func.count()).where(*runs).group_by(day, DagRun.state)
    ).all()
    days_list = [(start + timedelta(days=i)).date().isoformat() for i in range(days)]
    per_day: dict[str, dict[str, int]] = {d: {} for d in days_list}
    for d, state, n in per_day_rows:
        per_day.setdefault(str(d), {})[state or "none"] = n

    by_state = {state or "none": n for state, n in session.execute(
        select(DagRun.state, func.count()).where(*runs).group_by(DagRun.state)
    ).all()}
    finished = sum(by_state.get(s, 0) for s in FINISHED)

    per_dag: dict[str, dict[str, int]] = {}
    for dag_id, state, n in session.execute(
        select(DagRun.dag_id, DagRun.state, func.count()).where(*runs).group_by(DagRun.dag_id, DagRun.state)
    ).all():
        per_dag.setdefault(dag_id, {})[state or "none"] = n

    next_runs = [
        {"dag_id": dag_id, "next_logical_date": _iso(logical), "next_run_after": _iso(after)}
        for dag_id, logical, after in session.execute(
            select(DagModel.dag_id, DagModel.next_dagrun, DagModel.next_dagrun_create_after)
            .where(*in_scope(DagModel.dag_id), DagModel.is_paused.is_(False), DagModel.is_stale.is_(False),
                   DagModel.next_dagrun_create_after.is_not(None))
            .order_by(DagModel.next_dagrun_create_after, DagModel.dag_id)
            .limit(NEXT_RUNS_LIMIT)
        ).all()
    ]

    tags = list(session.scalars(
        select(DagTag.name).where(DagTag.dag_id.in_(readable)).distinct().order_by(DagTag.name)
    ))

    return {
        "window": {"days": days, "start": start.isoformat(), "end": now.isoformat(), "tag": tag},
        "runs_per_day": [{"day": d, "states": per_day[d]} for d in sorted(per_day)],
        "runs_by_state": by_state,
        "total_runs": sum(by_state.values()),
        "finished_runs": finished,
        "success_rate": round(by_state.get("success", 0) / finished, 4) if finished else None,
        "runs_per_dag": [{"dag_id": k, "states": v, "total": sum(v.values())}
                         for k, v in sorted(per_dag.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))],
        "next_runs": next_runs,
        "tags": tags,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
