// Produce numbered records with keys and headers through Sarama (the Go client) with an
// idempotent producer, then read them back with a Sarama consumer group, and print what was
// read as JSON lines.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type record struct {
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sarama-compat"
	c.Version = sarama.V2_1_0_0
	return c
}

func produce(brokers []string, topic string, count int) error {
	c := config()
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Retry.Max = 5
	c.Net.MaxOpenRequests = 1
	// Not zstd: this Sarama sends Produce v3, and zstd needs v7 (KIP-110); Kafka and
	// Kafkaweb both answer UNSUPPORTED_COMPRESSION_TYPE.
	codecs := []sarama.CompressionCodec{
		sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy,
		sarama.CompressionLZ4,
	}
	per := (count + len(codecs) - 1) / len(codecs)
	for n, codec := range codecs {
		c.Producer.Compression = codec
		producer, err := sarama.NewSyncProducer(brokers, c)
		if err != nil {
			return err
		}
		var messages []*sarama.ProducerMessage
		for i := n * per; i < count && i < (n+1)*per; i++ {
			messages = append(messages, &sarama.ProducerMessage{
				Topic: topic,
				Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%37)),
				Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
				Headers: []sarama.RecordHeader{
					{Key: []byte("index"), Value: []byte(strconv.Itoa(i))},
					{Key: []byte("codec"), Value: []byte(codec.String())},
				},
			})
		}
		if err := producer.SendMessages(messages); err != nil {
			if failed, ok := err.(sarama.ProducerErrors); ok && len(failed) > 0 {
				return fmt.Errorf("%s with %s: %v", err, codec, failed[0].Err)
			}
			return err
		}
		if err := producer.Close(); err != nil {
			return err
		}
	}
	return nil
}

type handler struct {
	mu    sync.Mutex
	seen  int
	count int
	done  chan struct{}
	out   *json.Encoder
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for message := range claim.Messages() {
		headers := map[string]string{}
		for _, header := range message.Headers {
			headers[string(header.Key)] = string(header.Value)
		}
		h.mu.Lock()
		h.out.Encode(record{message.Partition, message.Offset, string(message.Key), string(message.Value), headers})
		h.seen++
		if h.seen == h.count {
			close(h.done)
		}
		h.mu.Unlock()
		session.MarkMessage(message, "")
	}
	return nil
}

func consume(brokers []string, topic string, count int, group string) error {
	c := config()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	consumerGroup, err := sarama.NewConsumerGroup(brokers, group, c)
	if err != nil {
		return err
	}
	defer consumerGroup.Close()
	h := &handler{count: count, done: make(chan struct{}), out: json.NewEncoder(os.Stdout)}
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := consumerGroup.Consume(ctx, []string{topic}, h); err != nil {
				failed <- err
				return
			}
		}
	}()
	defer cancel()
	select {
	case <-h.done:
		return nil
	case err := <-failed:
		return err
	case err := <-consumerGroup.Errors():
		return err
	case <-time.After(120 * time.Second):
		return fmt.Errorf("read %d of %d in time", h.seen, count)
	}
}

func main() {
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
	brokers := strings.Split(os.Args[1], ",")
	topic := os.Args[2]
	count, _ := strconv.Atoi(os.Args[3])
	group := os.Args[4]
	if err := produce(brokers, topic, count); err != nil {
		fmt.Fprintln(os.Stderr, "produce:", err)
		os.Exit(1)
	}
	if err := consume(brokers, topic, count, group); err != nil {
		fmt.Fprintln(os.Stderr, "consume:", err)
		os.Exit(1)
	}
}
