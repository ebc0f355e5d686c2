"""Cluster metadata: the truth the controller writes and the brokers cache."""

from __future__ import annotations

import uuid

from django.db import models


class ClusterState(models.Model):
    """The single row of cluster-wide state: identity, controller, metadata version."""

    cluster_id = models.CharField(max_length=32)
    controller_id = models.IntegerField(null=True, blank=True)
    # Every decision of the controller carries this epoch; brokers refuse older ones.
    controller_epoch = models.BigIntegerField(default=0)
    # Bumped with every metadata change; brokers reload when theirs is behind.
    metadata_version = models.BigIntegerField(default=0)
    next_producer_id = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "cluster state"

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} (controller {self.controller_id}, epoch {self.controller_epoch})"


class Broker(models.Model):
    class State(models.TextChoices):
        UP = "up", "up"
        DOWN = "down", "down"
        SHUTTING_DOWN = "shutting_down", "controlled shutdown"

    id = models.PositiveIntegerField(primary_key=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    rack = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.DOWN)
    # Increases with each registration, so a restarted broker is told apart from its past self.
    epoch = models.BigIntegerField(default=0)
    incarnation = models.CharField(max_length=64, blank=True, default="")
    registered_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"broker {self.id} ({self.host}:{self.port}, {self.state})"


class Topic(models.Model):
    name = models.CharField(max_length=249, unique=True)
    topic_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TopicConfig(models.Model):
    """A topic-level config override, by Kafka's name (retention.ms, cleanup.policy, ...)."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="configs")
    name = models.CharField(max_length=255)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["topic", "name"], name="topic_config_unique")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.topic.name}: {self.name}={self.value}"


class Partition(models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="partitions")
    index = models.PositiveIntegerField()
    leader = models.ForeignKey(
        Broker, null=True, blank=True, on_delete=models.SET_NULL, related_name="led_partitions"
    )
    # Grows with every leader change; followers and clients use it to fence stale leaders.
    leader_epoch = models.IntegerField(default=0)
    # Grows with every change of leader, ISR or replicas.
    partition_epoch = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["topic", "index"], name="partition_unique"),
        ]
        ordering = ["topic", "index"]

    def __str__(self) -> str:
        return f"{self.topic.name}-{self.index}"


class Replica(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "member"
        ADDING = "adding", "being added (reassignment)"
        REMOVING = "removing", "being removed (reassignment)"

    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="replicas")
    broker = models.ForeignKey(Broker, on_delete=models.CASCADE, related_name="replicas")
    # Order of the replica list; position 0 is the preferred leader.
    position = models.PositiveSmallIntegerField()
    in_sync = models.BooleanField(default=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partition", "broker"], name="replica_unique"),
        ]
        ordering = ["partition", "position"]

    def __str__(self) -> str:
        return f"{self.partition} on broker {self.broker_id}"


class ConsumerGroup(models.Model):
    group_id = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=32, default="Empty")
    protocol_type = models.CharField(max_length=64, blank=True, default="")
    protocol = models.CharField(max_length=64, blank=True, default="")
    generation = models.IntegerField(default=0)
    leader_member = models.CharField(max_length=255, blank=True, default="")
    coordinator_id = models.IntegerField(null=True, blank=True)
    # Members as the coordinator last saw them: id, client id, host, assigned partitions.
    members = models.JSONField(default=list, blank=True)
    # The group's partition of __consumer_offsets; its leader is the group's coordinator.
    offsets_partition = models.IntegerField(null=True, blank=True, db_index=True)
    # The last stable generation as the coordinator stored it (members' protocol metadata and
    # assignments as base64), so a new coordinator restores the group after a failover.
    snapshot = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group_id"]

    def __str__(self) -> str:
        return self.group_id


class CommittedOffset(models.Model):
    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, related_name="offsets")
    topic = models.CharField(max_length=249)
    partition = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    leader_epoch = models.IntegerField(default=-1)
    metadata = models.TextField(blank=True, default="")
    committed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "topic", "partition"], name="committed_offset_unique"
            ),
        ]
        indexes = [models.Index(fields=["topic", "partition"])]
        ordering = ["group", "topic", "partition"]

    def __str__(self) -> str:
        return f"{self.group.group_id} {self.topic}-{self.partition}@{self.offset}"


class PendingTxnOffset(models.Model):
    """An offset a transaction committed (TxnOffsetCommit): it becomes a CommittedOffset when
    the transaction commits, and is dropped when it aborts."""

    group = models.ForeignKey(
        ConsumerGroup, on_delete=models.CASCADE, related_name="pending_txn_offsets"
    )
    producer_id = models.BigIntegerField()
    topic = models.CharField(max_length=249)
    partition = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    leader_epoch = models.IntegerField(default=-1)
    metadata = models.TextField(blank=True, default="")
    committed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "producer_id", "topic", "partition"],
                name="pending_txn_offset_unique",
            ),
        ]
        ordering = ["group", "producer_id", "topic", "partition"]

    def __str__(self) -> str:
        return f"{self.group.group_id} {self.topic}-{self.partition}@{self.offset} (pending)"


class Transaction(models.Model):
    """A transactional id's producer and its current transaction, as the coordinator stores it.

    The leader of the id's `__consumer_offsets` partition coordinates it; a new coordinator
    reads these rows back and finishes what the previous one started.
    """

    transactional_id = models.CharField(max_length=255, unique=True)
    producer_id = models.BigIntegerField()
    producer_epoch = models.IntegerField()
    timeout_ms = models.IntegerField()
    # Kafka's TransactionState names: Empty, Ongoing, PrepareCommit, PrepareAbort, ...
    state = models.CharField(max_length=32)
    # [[topic, partition], ...] in the current transaction.
    partitions = models.JSONField(default=list, blank=True)
    started_ms = models.BigIntegerField(default=-1)
    coordinator_partition = models.IntegerField(db_index=True)
    coordinator_id = models.IntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["transactional_id"]

    def __str__(self) -> str:
        return self.transactional_id


class ClusterEvent(models.Model):
    class Kind(models.TextChoices):
        BROKER_UP = "broker_up", "broker up"
        BROKER_DOWN = "broker_down", "broker down"
        CONTROLLER = "controller", "controller change"
        LEADER = "leader", "leader change"
        ISR = "isr", "ISR change"
        TOPIC = "topic", "topic change"
        CONFIG = "config", "config change"
        GROUP = "group", "consumer group change"
        ADMIN = "admin", "admin action"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    broker_id = models.IntegerField(null=True, blank=True)
    topic = models.CharField(max_length=249, blank=True, default="")
    partition = models.IntegerField(null=True, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    # Who did it: a user name for admin actions, "controller" or "broker N" otherwise.
    actor = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message}"


class ProducerIdBlock(models.Model):
    """A block of producer ids handed to one broker (KIP-730), so ids never repeat."""

    broker_id = models.IntegerField()
    first_id = models.BigIntegerField(unique=True)
    size = models.IntegerField()
    allocated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["first_id"]

    def __str__(self) -> str:
        return f"producer ids {self.first_id}..{self.first_id + self.size - 1} → broker {self.broker_id}"
