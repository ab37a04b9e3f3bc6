//! Network faults: the embedded Toxiproxy-compatible proxy, its HTTP API, partitions.
