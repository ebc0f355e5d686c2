"""The Kafka wire protocol as a broker speaks it: framing, dispatch and one handler per API family."""
