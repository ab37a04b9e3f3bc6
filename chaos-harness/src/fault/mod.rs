//! Faults: the `Fault` trait (inject -> active handle -> clear), process, network, resources.

pub mod net;
