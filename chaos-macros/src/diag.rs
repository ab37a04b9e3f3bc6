//! Diagnostics helpers: collecting several [`syn::Error`]s, and "did you mean" suggestions.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects errors so that one expansion can report every problem at once
/// (through [`syn::Error::combine`]).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds an error spanning `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds an error at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Adds the error of `result`, if any, and returns its value.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// `Ok(value)` when no error was collected, else all of them.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input = input.to_lowercase();
    let len = input.chars().count();
    candidates
        .iter()
        .map(|&candidate| (edit_distance(&input, candidate), candidate))
        // At most one edit per three characters of the longer word.
        .filter(|&(distance, candidate)| distance * 3 <= len.max(candidate.chars().count()))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// `" (did you mean `x`?)"` or nothing.
pub(crate) fn suggestion(input: &str, candidates: &[&str]) -> String {
    did_you_mean(input, candidates).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default()
}

/// Edit distance (optimal string alignment: insertions, deletions, substitutions and
/// transpositions of adjacent characters), by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("tag", "tags"), 1);
        assert_eq!(edit_distance("timout", "timeout"), 1);
        assert_eq!(edit_distance("igonre", "ignore"), 1);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("µs", "us"), 1);
    }

    #[test]
    fn suggestions() {
        let keys = ["tags", "timeout", "ignore", "requires", "name"];
        assert_eq!(did_you_mean("tag", &keys), Some("tags"));
        assert_eq!(did_you_mean("Tags", &keys), Some("tags"));
        assert_eq!(did_you_mean("timeuot", &keys), Some("timeout"));
        assert_eq!(did_you_mean("require", &keys), Some("requires"));
        assert_eq!(did_you_mean("nmae", &keys), Some("name"));
        assert_eq!(did_you_mean("flaky", &keys), None);
        assert_eq!(did_you_mean("x", &keys), None);
        assert_eq!(did_you_mean("", &keys), None);
        assert_eq!(suggestion("tag", &keys), " (did you mean `tags`?)");
        assert_eq!(suggestion("flaky", &keys), "");
    }

    #[test]
    fn errors_accumulate() {
        let mut errors = Errors::default();
        assert_eq!(errors.take(Ok::<_, syn::Error>(1)), Some(1));
        errors.at(Span::call_site(), "first");
        assert_eq!(errors.take(Err::<(), _>(syn::Error::new(Span::call_site(), "second"))), None);
        let messages: Vec<String> = errors.finish(()).unwrap_err().into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }
}
