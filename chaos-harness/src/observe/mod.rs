//! Observation: process snapshots, resource samples, telemetry, the event timeline.
