"""uptimed: self-hosted uptime monitor with a Kafka-driven notification pipeline."""

__version__ = "0.1.0"
