//! Tag selection: `CHAOS_TAGS="net,process,!soak"`, `--tag`, `--skip-tag`.
//!
//! A test is selected when it carries at least one included tag (or no tag is included) and
//! none of the excluded ones. Tests tagged `soak` or `slow` ([`OPT_IN_TAGS`]) are excluded
//! unless that tag is included explicitly: long runs are opt-in. The tag grammar is the one
//! the `#[chaos_test]` macro checks ([`crate::host::names::tag_error`]).

pub use crate::host::names::OPT_IN_TAGS;

/// A parsed tag selection.
///
/// ```
/// use chaos_harness::runner::tags::TagFilter;
/// let f = TagFilter::parse("net,process,!slow").unwrap();
/// assert!(f.selects(&["net"]));
/// assert!(!f.selects(&["net", "slow"]));
/// assert!(!f.selects(&["resources"]));
/// assert!(!TagFilter::default().selects(&["soak"]));
/// assert!(TagFilter::parse("soak").unwrap().selects(&["soak"]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

/// A tag expression that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid tag `{tag}` in `{expr}`: {cause}; write tags as a comma list like \"net,process,!soak\" (lowercase letters, digits, `_`, `-`; `!` excludes)"
)]
pub struct TagError {
    /// The whole expression.
    pub expr: String,
    /// The offending tag.
    pub tag: String,
    /// Why it is invalid.
    pub cause: &'static str,
}

impl TagFilter {
    /// Parses a comma-separated list; `!tag` excludes. Empty items are ignored.
    pub fn parse(expr: &str) -> Result<Self, TagError> {
        let mut filter = Self::default();
        filter.extend(expr)?;
        Ok(filter)
    }

    /// Adds the tags of another expression to this filter.
    pub fn extend(&mut self, expr: &str) -> Result<(), TagError> {
        for raw in expr.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            let (negated, tag) = match item.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, item),
            };
            validate(tag).map_err(|cause| TagError { expr: expr.into(), tag: item.into(), cause })?;
            let list = if negated { &mut self.exclude } else { &mut self.include };
            if !list.iter().any(|t| t == tag) {
                list.push(tag.to_string());
            }
        }
        Ok(())
    }

    /// Adds one included tag (`--tag`).
    pub fn include(&mut self, tag: &str) -> Result<(), TagError> {
        validate(tag).map_err(|cause| TagError { expr: tag.into(), tag: tag.into(), cause })?;
        self.include.push(tag.to_string());
        Ok(())
    }

    /// Adds one excluded tag (`--skip-tag`).
    pub fn exclude(&mut self, tag: &str) -> Result<(), TagError> {
        validate(tag).map_err(|cause| TagError { expr: tag.into(), tag: tag.into(), cause })?;
        self.exclude.push(tag.to_string());
        Ok(())
    }

    /// Whether a test with `tags` is selected.
    pub fn selects<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        let has = |t: &str| tags.iter().any(|x| x.as_ref() == t);
        if self.exclude.iter().any(|t| has(t)) {
            return false;
        }
        if OPT_IN_TAGS.iter().any(|opt| has(opt) && !self.include.iter().any(|t| t == opt)) {
            return false;
        }
        self.include.is_empty() || self.include.iter().any(|t| has(t))
    }

    /// The included tags, in the order given.
    pub fn included(&self) -> &[String] {
        &self.include
    }

    /// `true` when nothing was included or excluded.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

fn validate(tag: &str) -> Result<(), &'static str> {
    match crate::host::names::tag_error(tag) {
        Some(cause) => Err(cause),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_exclude_and_soak() {
        let f = TagFilter::parse(" net , !soak,process").unwrap();
        assert!(f.selects(&["process"]));
        assert!(!f.selects(&["process", "soak"]));
        assert!(!f.selects::<&str>(&[]));
        let none = TagFilter::default();
        assert!(none.selects::<&str>(&[]));
        assert!(none.selects(&["anything"]));
        assert!(!none.selects(&["anything", "soak"]));
        assert!(!none.selects(&["anything", "slow"]));
        assert!(TagFilter::parse("slow").unwrap().selects(&["slow"]));
        // One grammar with the macro: uppercase is refused here too.
        assert!(TagFilter::parse("Net").is_err());
        let only_excl = TagFilter::parse("!net").unwrap();
        assert!(only_excl.selects(&["process"]));
        assert!(!only_excl.selects(&["net"]));
    }

    #[test]
    fn rejects_bad_tags_with_the_fix() {
        let e = TagFilter::parse("net,pro cess").unwrap_err();
        assert_eq!(e.tag, "pro cess");
        assert!(e.to_string().contains("net,process,!soak"));
        assert!(TagFilter::parse("!").is_err());
        assert!(TagFilter::parse(",,").unwrap().is_empty());
    }
}
