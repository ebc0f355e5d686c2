// A KafkaJS transactional producer: commit, abort, commit again, with the offsets of a
// consumer group sent inside the first transaction; then a KafkaJS consumer (read_committed,
// KafkaJS's default) prints what it reads as JSON lines, and the group's offsets last.
const { Kafka, logLevel } = require("kafkajs");

const [brokers, topic, inputTopic, groupId, readerGroupId] = process.argv.slice(2);
const kafka = new Kafka({ clientId: "kafkajs-txn", brokers: brokers.split(","), logLevel: logLevel.ERROR });

function batch(prefix, count) {
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ key: `key-${i % 7}`, value: `${prefix}-${i}` });
  }
  return messages;
}

async function produce() {
  const producer = kafka.producer({
    transactionalId: `${topic}-txn`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();

  const first = await producer.transaction();
  await first.send({ topic, messages: batch("commit", 100) });
  await first.sendOffsets({
    consumerGroupId: groupId,
    topics: [{ topic: inputTopic, partitions: [{ partition: 0, offset: "42" }] }],
  });
  await first.commit();

  const second = await producer.transaction();
  await second.send({ topic, messages: batch("abort", 100) });
  await second.abort();

  const third = await producer.transaction();
  await third.send({ topic, messages: batch("again", 50) });
  await third.commit();

  await producer.disconnect();
}

async function consume(expected) {
  const consumer = kafka.consumer({ groupId: readerGroupId, sessionTimeout: 10000, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen} of ${expected} in time`)), 120000);
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          process.stdout.write(
            JSON.stringify({ partition, offset: Number(message.offset), value: message.value.toString() }) + "\n",
          );
          seen += 1;
          if (seen === expected) {
            clearTimeout(timer);
            // Anything that should not be there would come within this second too.
            setTimeout(resolve, 1000);
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
}

async function offsets() {
  const admin = kafka.admin();
  await admin.connect();
  const fetched = await admin.fetchOffsets({ groupId, topics: [inputTopic] });
  await admin.disconnect();
  process.stdout.write(JSON.stringify({ offsets: fetched }) + "\n");
}

produce()
  .then(() => consume(150))
  .then(offsets)
  .then(() => process.exit(0))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
