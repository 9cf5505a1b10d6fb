"""The collector: producers' batches in (HTTP and WebSocket), validated, deduplicated,
encrypted and written to the events stream, spooled to disk while Redis is away; health
probes and the collector's own heartbeat; a producer client and a traffic simulator."""
