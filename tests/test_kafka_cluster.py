"""uptimed on a real 3-broker KRaft cluster (the ``kafka_cluster`` fixture), as the production config runs it.

Topics with replication factor 3 and min.insync.replicas=2; every write is
acknowledged by all in-sync replicas, so one broker may be lost.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support import EventReader, KafkaCluster, Stack, Target, kafka_version, to_toml
from tests.test_monitoring import monitor, target  # noqa: F401 - the target fixture


@pytest.fixture
def cluster_stack(kafka_cluster: KafkaCluster, stack: Stack) -> Stack:
    """This test's names and database, with Kafka on the cluster."""
    return Stack(dsn=stack.dsn, redis_url=stack.redis_url, bootstrap=kafka_cluster.bootstrap, prefix=f"c{uuid.uuid4().hex[:10]}")


async def topic_config(bootstrap: str, topic: str, name: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})])
    finally:
        await admin.close()
    [resource] = response.to_object()["resources"]
    assert resource["error_code"] == 0, resource
    return {entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]}[name]


async def test_uptimed_on_three_brokers_replicates_its_topics_and_alerts_once(
    kafka_cluster: KafkaCluster, cluster_stack: Stack, target: Target, start_daemon
) -> None:
    sections = cluster_stack.sections()
    sections["kafka"].update(replication_factor=3, min_insync_replicas=2)
    daemon = await start_daemon(to_toml(sections) + "\n" + monitor(target.url()))
    assert daemon.events("kafka.broker")[0]["brokers"] == 3
    events_topic = f"{cluster_stack.prefix}.website.events"

    for topic in (f"{cluster_stack.prefix}.checks", events_topic, f"{cluster_stack.prefix}.dead-letters"):
        partitions = await kafka_cluster.partitions(topic)
        assert len(partitions) == 3
        for partition in partitions:
            assert sorted(partition["replicas"]) == [1, 2, 3], partition
            assert sorted(partition["isr"]) == [1, 2, 3], partition
        assert await topic_config(kafka_cluster.bootstrap, topic, "min.insync.replicas") == "2"
    # Leadership is spread: the fault tests can pick the leader of the partition in use.
    leaders = {await kafka_cluster.leader_of(events_topic, p) for p in range(3)}
    assert leaders <= {1, 2, 3} and len(leaders) > 1

    reader = await EventReader(kafka_cluster.bootstrap, events_topic).start()
    try:
        await target.wait_hits(2, status=200)
        target.status = 500
        [down] = await reader.wait_for("website.down")
        assert down["url"] == target.url() and "500" in down["reason"]
        target.status = 200
        await reader.wait_for("website.up")
        # Events of one monitor share a partition, in order: a second down would have come before the up.
        assert [e["type"] for e in reader.events] == ["website.down", "website.up"]
    finally:
        await reader.stop()
    assert await daemon.stop() == 0


async def test_a_killed_leader_is_replaced_writes_go_on_and_it_catches_up_after_a_restart(
    kafka_cluster: KafkaCluster, cluster_stack: Stack
) -> None:
    from aiokafka import AIOKafkaProducer

    from uptimed.bus.kafka import ensure_topics

    settings = cluster_stack.settings(kafka={"replication_factor": 3, "min_insync_replicas": 2})
    await ensure_topics(settings.kafka)
    topic = settings.kafka.topics.checks
    leader = await kafka_cluster.leader_of(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before", partition=0)
        await kafka_cluster.kill(leader)
        # acks=all with two of three replicas in sync: the write waits for a new leader, then succeeds.
        await producer.send_and_wait(topic, b"during", partition=0)
        new_leader = await kafka_cluster.leader_of(topic, 0)
        assert new_leader not in (leader, -1)
        [partition] = [p for p in await kafka_cluster.partitions(topic) if p["partition"] == 0]
        assert leader not in partition["isr"] and len(partition["isr"]) == 2
        code, status = await kafka_cluster.services("status", "kafka", check=False)
        assert code == 1 and f"degraded, node {leader} of 3 down" in status

        await kafka_cluster.start(leader)
        assert (await kafka_cluster.services("status", "kafka"))[1].startswith(f"kafka: {kafka_version()} running, 3 brokers")
        await kafka_cluster.wait_in_sync(topic)
        await producer.send_and_wait(topic, b"after", partition=0)
    finally:
        await producer.stop()
        await kafka_cluster.start(leader)  # whatever happened, the next test gets three brokers
