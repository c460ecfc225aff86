"""Domain events: a durable outbox in SQL, relayed to Redis Streams (or an in-process bus), replayable."""
