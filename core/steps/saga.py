"""The durable compensation log a run's undo actions are kept in (a saga's log).

A step that creates something declares its undo (``core.steps.step.Undo``). When the step
succeeds, the driver records the undo step's name and arguments in the family's own
database, through a ``CompensationLog``; when the run fails, is cancelled or crashes, the
driver reads the entries not yet undone and runs them in reverse order, marking each
done. The log outlives the process, so a run that died can be compensated by a later
attempt or another process. Prefect's transactions are not used: a retried attempt rolls
its parent back, and their state does not outlive the process.

Entries are keyed by the run's generation, the step and the undo's arguments, so
recording the same step twice (a task retry) keeps one entry. The run's *generation* is
how many entries are done: it grows only when an undo ran, and it is part of the cache
key of every effect step, so a run retried after a compensation does the work again
instead of replaying steps whose effect was undone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine


class CompensationEntry(BaseModel):
    """One recorded undo action."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The log's id of the entry")
    key: str = Field(description="generation:step:arguments hash; unique per run")
    step: str = Field(description="The step whose effect this undoes")
    undo: str = Field(description="The step that undoes it")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Never a secret")
    done: bool = False
    error: str | None = Field(None, description="Why the last attempt to undo it failed")


class CompensationLog(Protocol):
    """Where a family keeps its runs' undo actions (its own database)."""

    async def record(
        self, run_id: str, *, key: str, step: str, undo: str, arguments: dict[str, Any]
    ) -> None:
        """Keep the entry (once per ``key``)."""

    async def entries(self, run_id: str) -> list[CompensationEntry]:
        """Every entry of the run, in the order recorded."""

    async def settle(self, run_id: str, entry_id: str, *, error: str | None = None) -> None:
        """The entry was undone (``error`` None), or the attempt to undo it failed."""


def entry_key(generation: int, step: str, arguments: dict[str, Any]) -> str:
    digest = hashlib.sha256(
        json.dumps(arguments, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return f"{generation}:{step}:{digest}"


def generation_of(entries: list[CompensationEntry]) -> int:
    return sum(1 for entry in entries if entry.done)


# ---- a log in a SQL database (what the families with a database of their own use) ------
metadata = sa.MetaData()
compensation_table = sa.Table(
    "step_compensation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("step", sa.String(100), nullable=False),
    sa.Column("undo", sa.String(100), nullable=False),
    sa.Column("arguments", sa.JSON, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.UniqueConstraint("run_id", "key", name="uq_step_compensation_run_key"),
)


class SqlCompensationLog:
    """A ``CompensationLog`` in a table of the family's database (``step_compensation``;
    ``metadata`` holds it for the family's migrations, ``create_table`` for tests and
    tools). Recording an entry twice keeps the first (the unique key)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_table(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def record(
        self, run_id: str, *, key: str, step: str, undo: str, arguments: dict[str, Any]
    ) -> None:
        row = {
            "run_id": run_id,
            "key": key,
            "step": step,
            "undo": undo,
            "arguments": arguments,
            "recorded_at": datetime.now(UTC),
        }
        with contextlib.suppress(sa.exc.IntegrityError):  # recorded by an earlier attempt
            async with self.engine.begin() as connection:
                await connection.execute(compensation_table.insert().values(**row))

    async def entries(self, run_id: str) -> list[CompensationEntry]:
        query = (
            sa.select(compensation_table)
            .where(compensation_table.c.run_id == run_id)
            .order_by(compensation_table.c.id)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            CompensationEntry(
                id=str(row["id"]),
                key=row["key"],
                step=row["step"],
                undo=row["undo"],
                arguments=row["arguments"] or {},
                done=row["done_at"] is not None,
                error=row["error"],
            )
            for row in rows
        ]

    async def settle(self, run_id: str, entry_id: str, *, error: str | None = None) -> None:
        values: dict[str, Any] = {"error": error}
        if error is None:
            values["done_at"] = datetime.now(UTC)
        async with self.engine.begin() as connection:
            await connection.execute(
                compensation_table.update()
                .where(
                    compensation_table.c.run_id == run_id,
                    compensation_table.c.id == int(entry_id),
                    compensation_table.c.done_at.is_(None),
                )
                .values(**values)
            )
