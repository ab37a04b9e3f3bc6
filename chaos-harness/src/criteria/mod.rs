//! Success criteria: the `Criterion` trait and the built-ins.
