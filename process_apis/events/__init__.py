"""Domain events: a durable outbox in SQL, relayed to Redis Streams (or an in-process bus), replayable; typed
payloads per the AsyncAPI contract (contracts/process/events/asyncapi.yaml); the PSA watch for the events the PSA
is the system of record for; dead letters for operators to inspect and re-drive."""
