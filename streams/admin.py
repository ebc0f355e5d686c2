"""Django admin registrations for the cluster metadata."""

from django.contrib import admin

from streams import models


class TopicConfigInline(admin.TabularInline):
    model = models.TopicConfig
    extra = 0


class PartitionInline(admin.TabularInline):
    model = models.Partition
    extra = 0
    fields = ("index", "leader", "leader_epoch", "partition_epoch")
    readonly_fields = fields
    can_delete = False


class ReplicaInline(admin.TabularInline):
    model = models.Replica
    extra = 0


@admin.register(models.ClusterState)
class ClusterStateAdmin(admin.ModelAdmin):
    list_display = ("cluster_id", "controller_id", "controller_epoch", "metadata_version")


@admin.register(models.Broker)
class BrokerAdmin(admin.ModelAdmin):
    list_display = ("id", "host", "port", "state", "epoch", "state_changed_at")
    list_filter = ("state",)


@admin.register(models.Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "topic_id", "internal", "created_at")
    search_fields = ("name",)
    inlines = [TopicConfigInline, PartitionInline]


@admin.register(models.Partition)
class PartitionAdmin(admin.ModelAdmin):
    list_display = ("topic", "index", "leader", "leader_epoch", "partition_epoch")
    search_fields = ("topic__name",)
    inlines = [ReplicaInline]


@admin.register(models.Replica)
class ReplicaAdmin(admin.ModelAdmin):
    list_display = ("partition", "broker", "position", "in_sync", "role")
    list_filter = ("in_sync", "role", "broker")


@admin.register(models.ConsumerGroup)
class ConsumerGroupAdmin(admin.ModelAdmin):
    list_display = ("group_id", "state", "protocol", "generation", "coordinator_id", "updated_at")
    search_fields = ("group_id",)


@admin.register(models.CommittedOffset)
class CommittedOffsetAdmin(admin.ModelAdmin):
    list_display = ("group", "topic", "partition", "offset", "committed_at")
    search_fields = ("group__group_id", "topic")


@admin.register(models.ClusterEvent)
class ClusterEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "broker_id", "topic", "partition", "message", "actor")
    list_filter = ("kind",)
    search_fields = ("message", "topic", "actor")


@admin.register(models.ProducerIdBlock)
class ProducerIdBlockAdmin(admin.ModelAdmin):
    list_display = ("first_id", "size", "broker_id", "allocated_at")
