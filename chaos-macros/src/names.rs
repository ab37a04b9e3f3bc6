//! Names shared by the `#[chaos_test]` macro (checked at compile time) and the harness's runner
//! (checked at run time): one list of capability names and one tag grammar.
//!
//! This file is compiled into both crates (`chaos-harness` includes it as `host::names`, with
//! an example there), so the two can never disagree. It uses nothing but `core`.

/// Every capability a test may list in `requires = [..]`.
pub const CAPABILITY_NAMES: &[&str] = &["root", "cgroups", "freezer", "netns", "nft", "elixir", "python3", "tmpfs"];

/// Prefixes of open-ended capabilities: `bin:PROGRAM` (an executable on PATH, e.g.
/// `bin:haproxy`) and `custom:NAME` (a check registered with `chaos_harness::capability!`).
pub const CAPABILITY_PREFIXES: &[&str] = &["bin:", "custom:"];

/// Whether `name` is a prefixed capability (`bin:..`, `custom:..`).
pub fn is_prefixed_capability(name: &str) -> bool {
    CAPABILITY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Why a prefixed capability is malformed (an empty or spaced name), or `None`.
pub fn prefixed_capability_error(name: &str) -> Option<&'static str> {
    let rest = CAPABILITY_PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
    if rest.is_empty() {
        Some("`bin:` and `custom:` need a name after the colon, e.g. `bin:haproxy`")
    } else if rest.chars().any(|c| c.is_whitespace() || c == '/') {
        Some("a `bin:` or `custom:` name holds no spaces or slashes (`bin:` looks the program up on PATH)")
    } else {
        None
    }
}

/// Tags whose tests are excluded unless selected explicitly: long runs are opt-in.
pub const OPT_IN_TAGS: &[&str] = &["soak", "slow"];

/// Whether `c` may appear in a tag: lowercase ASCII letters, digits, `_` and `-`.
pub fn is_tag_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '_' | '-')
}

/// Why `tag` is not a valid tag, or `None` when it is (the one tag grammar).
pub fn tag_error(tag: &str) -> Option<&'static str> {
    if tag.is_empty() {
        Some("a tag cannot be empty")
    } else if tag.starts_with('!') {
        Some("`!` excludes a tag when selecting; a tag itself cannot start with it")
    } else if !tag.chars().all(is_tag_char) {
        Some("a tag holds only lowercase letters, digits, `_` and `-`")
    } else {
        None
    }
}
