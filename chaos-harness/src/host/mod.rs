//! What this machine can do: capabilities a test can require (root, cgroups, the freezer,
//! network namespaces, nft, Elixir, Python, tmpfs), the binaries the harness needs, and the
//! shared names (capabilities, the tag grammar) that the `#[chaos_test]` macro checks at
//! compile time.
//!
//! The lowest room: it imports nothing else of the crate.
//!
//! ```
//! use chaos_harness::host::{capability, names};
//! assert_eq!(capability::CAPABILITY_NAMES, names::CAPABILITY_NAMES);
//! assert_eq!(names::tag_error("net-partition"), None);
//! assert!(names::tag_error("Net").is_some());
//! ```

pub mod capability;
pub mod doctor;
#[path = "../../../chaos-macros/src/names.rs"]
pub mod names;
