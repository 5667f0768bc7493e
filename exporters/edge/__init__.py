"""The edge agent: device and model KPIs, a durable spool, remote_write backfill."""
