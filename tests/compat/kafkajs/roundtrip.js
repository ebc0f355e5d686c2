// Produce numbered records with keys, headers and timestamps through KafkaJS, then read them
// back with a KafkaJS consumer group, and print what was read as JSON lines.
const { Kafka, CompressionTypes, logLevel } = require("kafkajs");

const [brokers, topic, countText, groupId] = process.argv.slice(2);
const count = Number(countText);
const kafka = new Kafka({ clientId: "kafkajs-compat", brokers: brokers.split(","), logLevel: logLevel.ERROR });

async function produce() {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const base = Date.now() - count;
  for (let start = 0; start < count; start += 500) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + 500); i++) {
      messages.push({
        key: `key-${i % 37}`,
        value: `value-${i}`,
        timestamp: String(base + i),
        headers: { index: String(i), source: "kafkajs" },
      });
    }
    await producer.send({ topic, messages, acks: -1, compression: start % 1000 === 0 ? CompressionTypes.GZIP : CompressionTypes.None });
  }
  await producer.disconnect();
}

async function consume() {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen} of ${count} in time`)), 120000);
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          process.stdout.write(
            JSON.stringify({
              partition,
              offset: Number(message.offset),
              key: message.key.toString(),
              value: message.value.toString(),
              timestamp: Number(message.timestamp),
              headers: Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, v.toString()])),
            }) + "\n",
          );
          seen += 1;
          if (seen === count) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
}

produce()
  .then(consume)
  .then(() => process.exit(0))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
