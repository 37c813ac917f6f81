"""Running Torreya in production (SPEC §4.11): health and readiness, metrics, request ids and
JSON logs, the schema's version, backup and restore."""
