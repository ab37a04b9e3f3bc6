//! Exports of scenario specs to other chaos engines (`chaos export`). A scenario that outgrows
//! one machine runs on Kubernetes through an existing engine rather than a home-made one.
//!
//! | module | engine |
//! |---|---|
//! | [`chaos_mesh`] | Chaos Mesh: PodChaos, NetworkChaos, StressChaos in a `Workflow` |

pub mod chaos_mesh;
