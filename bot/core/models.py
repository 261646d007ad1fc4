"""Database tables. Natural unique keys carry the exactly-once guarantees (docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.core import clock
from bot.core.ids import announcement_ref, decision_ref, feedback_ref


def utcnow() -> datetime:
    return clock.now()


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone and PostgreSQL would convert."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


# --- the inbox/outbox: every unit of work that must survive a crash -------------------------------


class Job(Base):
    """A durable unit of work for the worker: an inbound Slack event, or a message to send.

    `key` is the natural dedup key (event_id, or e.g. `confirm:FB-12`): a second insert is ignored,
    which is what makes Slack's retries and double clicks harmless.
    """

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # pending|done|failed|abandoned (the workspace removed Loopline or its token died: no retry can work)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_jobs_due", "status", "run_after"),)


# --- workspace and channel configuration --------------------------------------------------------


class Workspace(Base):
    """Which installation serves a workspace, in multi-workspace (OAuth) mode: its enterprise and whether
    the install is org-wide. Everything else is keyed by the workspace where things happened
    (`team_id`); Bolt finds a bot by (enterprise_id, team_id, is_enterprise_install), so work done
    without a request (jobs, deliveries, digests) looks the installation up with what is recorded here,
    as the edge saw it on the last request the installation authorised."""

    __tablename__ = "workspaces"
    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_workspaces_enterprise", "enterprise_id"),)


class Channel(Base):
    """What we know about a channel: watch mode, the customer account it maps to, whether it's usable."""

    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(255))
    is_private: Mapped[bool] = mapped_column(Boolean, default=False)
    watched: Mapped[bool] = mapped_column(Boolean, default=False)
    watched_by: Mapped[str | None] = mapped_column(String(32))
    customer: Mapped[str | None] = mapped_column(String(255))
    customer_arr: Mapped[float | None] = mapped_column(Float)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("team_id", "channel_id", name="uq_channels_team_channel"),)


class Area(Base):
    """A product area ("billing", "mobile app"); `name` is the normalised key, `label` what people typed."""

    __tablename__ = "areas"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    label: Mapped[str] = mapped_column(String(80))
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_areas_team_name"),)


class Subscription(Base):
    __tablename__ = "subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    inactive_reason: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    area: Mapped[Area] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "area_id", name="uq_subscriptions_channel_area"),
    )


# --- feedback -----------------------------------------------------------------------------------


class Feedback(Base):
    """One piece of customer feedback. `source_key` is its natural key (message, command, import row)."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    source_key: Mapped[str] = mapped_column(String(255), unique=True)
    text: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="feedback")
    area: Mapped[str | None] = mapped_column(String(80))
    customer: Mapped[str | None] = mapped_column(String(255))
    arr: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(String(1024))
    reporter: Mapped[str | None] = mapped_column(String(255))
    captured_by: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # command|shortcut|reaction|watch|import|modal
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|withdrawn
    withdrawn_reason: Mapped[str | None] = mapped_column(String(64))
    text_pending: Mapped[bool] = mapped_column(Boolean, default=False)  # waiting for the worker to fetch it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    embedding_model: Mapped[str | None] = mapped_column(String(80))
    # Set when the item was merged into another one (bot/services/merging.py): kept, counted under the other.
    merged_into: Mapped[int | None] = mapped_column(Integer, index=True, default=None)

    votes: Mapped[list[FeedbackVote]] = relationship(
        back_populates="feedback", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_feedback_team_created", "team_id", "created_at"),
        Index("ix_feedback_message", "team_id", "channel", "ts"),
    )

    @property
    def public_id(self) -> str:
        return feedback_ref(self.id)

    @property
    def vote_count(self) -> int:
        return len({v.user_id for v in self.votes})


class FeedbackVote(Base):
    """One person's support for an item, by one route (a reaction name, `capture` or `button`)."""

    __tablename__ = "feedback_votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    feedback: Mapped[Feedback] = relationship(back_populates="votes")

    __table_args__ = (UniqueConstraint("feedback_id", "user_id", "via", name="uq_votes_item_user_via"),)


class FeedbackMerge(Base):
    """One merge of `feedback_id` into `into_id`, with what it moved (vote and link rows, and the rows it
    dropped because the surviving item had them already), so that Undo restores exactly that."""

    __tablename__ = "feedback_merges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"), index=True)
    into_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    by: Mapped[str | None] = mapped_column(String(32))
    request_key: Mapped[str] = mapped_column(String(255), unique=True)  # the click: a retry merges nothing twice
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)
    undone_by: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("request_key", name="uq_feedback_merges_request"),)


class FeedbackPair(Base):
    """A person's answer about two items suggested as duplicates ("separate"): never suggested again."""

    __tablename__ = "feedback_pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    low_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    high_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    choice: Mapped[str] = mapped_column(String(16), default="separate")
    by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("low_id", "high_id", name="uq_feedback_pairs"),)


# --- announcements ------------------------------------------------------------------------------


class Announcement(Base):
    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    source_key: Mapped[str | None] = mapped_column(String(255), unique=True)  # the modal's view id
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    areas: Mapped[list[Any]] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled|sending|sent|retracted|cancelled
    send_at: Mapped[datetime] = mapped_column(default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    decision_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    confirm_channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    retracted_by: Mapped[str | None] = mapped_column(String(32))

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="announcement", cascade="all, delete-orphan", lazy="selectin", order_by="Delivery.id"
    )

    @property
    def public_id(self) -> str:
        return announcement_ref(self.id)


# Deliveries still to be posted (or being posted): what the delivery loop and /metrics count as open.
OPEN_DELIVERY = ("pending", "sending")


class Delivery(Base):
    """One announcement in one channel: the outbox row the worker claims, posts and records."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|sent|failed|retracted|cancelled
    ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    version_sent: Mapped[int] = mapped_column(Integer, default=0)  # announcement version this copy shows

    announcement: Mapped[Announcement] = relationship(back_populates="deliveries")

    __table_args__ = (
        UniqueConstraint("announcement_id", "channel", name="uq_deliveries_announcement_channel"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )


class Acknowledgement(Base):
    __tablename__ = "acknowledgements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("announcement_id", "user_id", name="uq_ack_announcement_user"),)


class ViewGrant(Base):
    """A right checked with Slack when a modal was opened, for its submission to rely on.

    A submission carries back whatever `private_metadata` the client sends, so "who opened this form"
    can't be read from it. The grant names the person and the view's `external_id` (set by us when
    opening it; Slack echoes it in the submission) and lasts a while (bot/features/announcements/service.py).
    """

    __tablename__ = "view_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    view_key: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- decisions ----------------------------------------------------------------------------------


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    source_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    context: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    owner: Mapped[str | None] = mapped_column(String(32))
    due: Mapped[date | None] = mapped_column(Date)
    area: Mapped[str | None] = mapped_column(String(80))
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set before the card's first chat.postMessage: a later attempt then looks for it in the channel
    # (bot.queue.postonce) instead of posting a second card.
    post_started_at: Mapped[datetime | None] = mapped_column(default=None)

    history: Mapped[list[DecisionEvent]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="DecisionEvent.id"
    )
    links: Mapped[list[DecisionFeedback]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def public_id(self) -> str:
        return decision_ref(self.id)

    @property
    def feedback_ids(self) -> list[int]:
        return sorted(link.feedback_id for link in self.links)


class DecisionEvent(Base):
    __tablename__ = "decision_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    by: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Interactive payloads carry no event id; the action's own id makes a retried click a no-op.
    request_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class DecisionFeedback(Base):
    __tablename__ = "decision_feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"))
    feedback_id: Mapped[int] = mapped_column(ForeignKey("feedback.id", ondelete="CASCADE"))
    linked_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("decision_id", "feedback_id", name="uq_decision_feedback"),)


class LoopNotification(Base):
    """A 'your feedback was answered' DM, once per person per decision outcome (or shipping)."""

    __tablename__ = "loop_notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(64))  # "decided" / "rejected" / "deferred" / "shipped:AN-4"
    feedback_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set before the DM's first chat.postMessage (see bot.queue.postonce).
    post_started_at: Mapped[datetime | None] = mapped_column(default=None)
    # "Reply in thread", per feedback id: {"<fid>": {"at": iso time the first attempt started, "ts": reply ts}}.
    # The record that a public reply was posted, checked before posting: job keys are pruned after 7 days.
    replies: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    __table_args__ = (
        UniqueConstraint("decision_id", "user_id", "trigger", name="uq_loop_notification"),
    )


# --- digests ------------------------------------------------------------------------------------


class DigestSchedule(Base):
    __tablename__ = "digest_schedules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    cadence: Mapped[str] = mapped_column(String(16))  # daily|weekly
    weekday: Mapped[int | None] = mapped_column(Integer)  # 0 = Monday
    at_time: Mapped[str] = mapped_column(String(5))  # HH:MM in `timezone`
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    areas: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("team_id", "channel", name="uq_digest_schedule_channel"),)


class DigestRun(Base):
    """One digest for one channel and period; the unique key is what prevents a second post."""

    __tablename__ = "digest_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("digest_schedules.id", ondelete="SET NULL"))
    period_key: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|posting|posted|failed
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    ts: Mapped[str | None] = mapped_column(String(32))
    reply_ts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[datetime | None] = mapped_column(default=None)
    # The poster's lease: a run is claimed by a conditional UPDATE, so two replicas never post it twice.
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The digest's data as built for this run (DigestData.to_dict): a resumed run posts the same replies,
    # and App Home reads the latest run's themes from here instead of re-clustering.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Set before the parent's first chat.postMessage: a resumed run looks for it (bot.queue.postonce).
    post_started_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("team_id", "channel", "period_key", name="uq_digest_run_period"),
        Index("ix_digest_runs_due", "status", "locked_until"),
    )


# --- Slack Connect: who is outside the organisation, which channels are shared with it -------------


class AudienceCheck(Base):
    """What Slack last said about a person (outside the installing organisation?) or a channel (shared
    with another organisation?), so the check costs one Web API call per object per TTL, not one per use.
    See docs/slack-connect.md."""

    __tablename__ = "audience_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))  # user|channel
    object_id: Mapped[str] = mapped_column(String(32))
    external: Mapped[bool] = mapped_column(Boolean)  # user: outside the organisation; channel: shared with it
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("team_id", "kind", "object_id", name="uq_audience_check"),)


class PostBudget(Base):
    """The shared Slack posting budget on PostgreSQL (bot/features/announcements/budget.py): when the next post may go out
    in a workspace (channel "") or in one of its channels. Times are the database's own clock, so every
    replica reads one timeline; SQLite (one process) paces in memory and leaves this table empty."""

    __tablename__ = "post_budget"
    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)  # "" = the whole workspace
    next_free_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
