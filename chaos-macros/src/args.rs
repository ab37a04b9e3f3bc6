//! The attribute arguments: `#[chaos_test(tags = [..], timeout = "..", ignore, requires = [..],
//! name = "..")]`, parsed and validated at compile time.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Lit, LitStr, Token};

use crate::diag::{Errors, suggestion};

/// The keys `#[chaos_test(..)]` accepts, in the order the docs list them.
pub(crate) const KEYS: &[&str] = &["tags", "timeout", "ignore", "requires", "name", "serial", "retries"];

/// The capabilities a test may list in `requires = [..]`; the runner checks them before the
/// body runs (the same list: `crate::names`).
pub(crate) const CAPABILITIES: &[&str] = crate::names::CAPABILITY_NAMES;

/// An example of valid durations, quoted in every timeout error.
const DURATION_EXAMPLES: &str = r#"write a duration like "90s", "1m 30s" or "500ms""#;

/// The validated arguments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Args {
    /// `tags = [..]`: valid, distinct tags.
    pub(crate) tags: Vec<String>,
    /// `timeout = ".."`, in milliseconds (at least 1).
    pub(crate) timeout_ms: Option<u64>,
    /// `ignore` / `ignore = ".."`.
    pub(crate) ignore: Ignore,
    /// `requires = [..]`: known, distinct capabilities.
    pub(crate) requires: Vec<String>,
    /// `name = ".."`.
    pub(crate) name: Option<String>,
    /// `serial`: runs alone, never in parallel with another test of the binary.
    pub(crate) serial: bool,
    /// `retries = N`: reruns after a failure (a later pass is reported flaky).
    pub(crate) retries: u32,
}

/// The `ignore` argument.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum Ignore {
    /// Not given.
    #[default]
    No,
    /// `ignore`.
    Yes,
    /// `ignore = "reason"`.
    Reason(String),
}

/// Parses and validates the tokens inside `#[chaos_test(..)]`, reporting every problem found.
pub(crate) fn parse_args(tokens: TokenStream) -> syn::Result<Args> {
    let raw = parse_raw.parse2(tokens)?;
    validate(raw)
}

/// One `key` or `key = value` as written.
struct RawArg {
    key: Ident,
    value: Option<Expr>,
}

/// The syntax: comma-separated `key` or `key = expression`, with an optional trailing comma.
fn parse_raw(input: ParseStream) -> syn::Result<Vec<RawArg>> {
    let mut args = Vec::new();
    while !input.is_empty() {
        if !input.peek(Ident::peek_any) {
            return Err(input.error(format!("expected `key` or `key = value`; valid keys: {}", KEYS.join(", "))));
        }
        let key = input.call(Ident::parse_any)?;
        let value = if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new_spanned(
                    eq,
                    format!("expected a value after `{key} =`{}", usage_hint(&key)),
                ));
            }
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        if input.is_empty() {
            args.push(RawArg { key, value });
            break;
        }
        if !input.peek(Token![,]) {
            return Err(input.error(match value {
                Some(_) => format!("expected `,` after the value of `{key}`"),
                None => format!("expected `=` or `,` after `{key}`{}", usage_hint(&key)),
            }));
        }
        input.parse::<Token![,]>()?;
        args.push(RawArg { key, value });
    }
    Ok(args)
}

/// How a key is written, for error messages.
fn usage(key: &str) -> Option<&'static str> {
    Some(match key {
        "tags" => r#"tags = ["smoke", "net"]"#,
        "timeout" => r#"timeout = "90s""#,
        "ignore" => r#"ignore` or `ignore = "reason""#,
        "requires" => r#"requires = ["root", "cgroups"]"#,
        "name" => r#"name = "custom name""#,
        "serial" => "serial",
        "retries" => "retries = 2",
        _ => return None,
    })
}

/// `"; write `usage`"` for a known key, else nothing.
fn usage_hint(key: &Ident) -> String {
    usage(&key.unraw().to_string()).map(|u| format!("; write `{u}`")).unwrap_or_default()
}

/// Checks keys and values; collects every error.
fn validate(raw: Vec<RawArg>) -> syn::Result<Args> {
    let mut args = Args::default();
    let mut errors = Errors::default();
    let mut seen: Vec<String> = Vec::new();
    for RawArg { key, value } in raw {
        let name = key.unraw().to_string();
        if !KEYS.contains(&name.as_str()) {
            errors.spanned(
                &key,
                format!("unknown key `{name}`; valid keys: {}{}", KEYS.join(", "), suggestion(&name, KEYS)),
            );
            continue;
        }
        if seen.contains(&name) {
            let merge = match name.as_str() {
                "tags" | "requires" => " (put all values in one list)",
                _ => "",
            };
            errors.spanned(&key, format!("duplicate key `{name}`; give each key once{merge}"));
            continue;
        }
        seen.push(name.clone());

        if name == "serial" {
            match value {
                None => args.serial = true,
                Some(v) => errors.spanned(&v, "`serial` takes no value: write `serial` alone".to_string()),
            }
            continue;
        }
        if name == "ignore" {
            if let Some(ignore) = errors.take(parse_ignore(value.as_ref())) {
                args.ignore = ignore;
            }
            continue;
        }
        let Some(value) = value else {
            errors.spanned(&key, format!("`{name}` needs a value: `{}`", usage(&name).unwrap_or_default()));
            continue;
        };
        match name.as_str() {
            "tags" => args.tags = errors.take(parse_tags(&value)).unwrap_or_default(),
            "timeout" => args.timeout_ms = errors.take(parse_timeout(&value)),
            "requires" => args.requires = errors.take(parse_requires(&value)).unwrap_or_default(),
            "name" => args.name = errors.take(parse_name(&value)),
            "retries" => args.retries = errors.take(parse_retries(&value)).unwrap_or_default(),
            _ => {} // `ignore` is handled above; unknown keys were rejected.
        }
    }
    errors.finish(args)
}

/// Looks through the invisible groups `macro_rules!` puts around `$e:expr` fragments.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => ungroup(&group.expr),
        other => other,
    }
}

/// The expression as a plain (unsuffixed) string literal.
fn lit_str(expr: &Expr) -> Option<&LitStr> {
    match ungroup(expr) {
        Expr::Lit(lit) if lit.attrs.is_empty() => match &lit.lit {
            Lit::Str(s) if s.suffix().is_empty() => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// `" (write `\"word\"`)"` when `expr` is a bare word that was probably meant as a string.
fn quote_hint(expr: &Expr) -> String {
    match ungroup(expr) {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            path.path.get_ident().map(|ident| format!(" (write `\"{}\"`)", ident.unraw())).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// `[ "a", "b" ]` -> the string literals; every other element, or a value that is not a list,
/// is an error.
fn string_list<'a>(key: &str, value: &'a Expr, errors: &mut Errors) -> Vec<&'a LitStr> {
    let Expr::Array(array) = ungroup(value) else {
        let message = match lit_str(value) {
            Some(s) => format!("expected a list: `{key} = [{:?}]`", s.value()),
            None => format!("expected a list of strings: `{}`", usage(key).unwrap_or_default()),
        };
        errors.spanned(value, message);
        return Vec::new();
    };
    let mut strings = Vec::new();
    for element in &array.elems {
        match lit_str(element) {
            Some(s) => strings.push(s),
            None => errors.spanned(element, format!("expected a string literal{}", quote_hint(element))),
        }
    }
    strings
}

/// `tags = [..]`.
fn parse_tags(value: &Expr) -> syn::Result<Vec<String>> {
    let mut errors = Errors::default();
    let mut tags: Vec<String> = Vec::new();
    for lit in string_list("tags", value, &mut errors) {
        let tag = lit.value();
        if let Err(message) = check_tag(&tag) {
            errors.at(lit.span(), message);
        } else if tags.contains(&tag) {
            errors.at(lit.span(), format!("duplicate tag {tag:?}"));
        } else {
            tags.push(tag);
        }
    }
    errors.finish(tags)
}

use crate::names::is_tag_char;

/// A tag is non-empty and made of `[a-z0-9_-]`.
pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    if crate::names::tag_error(tag).is_none() {
        return Ok(());
    }
    if tag.is_empty() {
        return Err(r#"empty tag; a tag is a name like "smoke" or "net-partition""#.into());
    }
    if let Some(rest) = tag.strip_prefix('!') {
        return Err(format!(
            "a tag cannot start with `!`: `!` excludes a tag when selecting tests \
             (`--tag '!{rest}'`); here, write the tag itself: {rest:?}"
        ));
    }
    let Some(bad) = tag.chars().find(|&c| !is_tag_char(c)) else {
        return Ok(());
    };
    let mut message =
        format!("invalid character {bad:?} in tag {tag:?}; tags use lowercase letters, digits, `_` and `-`");
    // Suggest a fixed tag when only case, spaces or ASCII punctuation are wrong.
    if tag.is_ascii() {
        let fixed: String = tag.to_ascii_lowercase().chars().map(|c| if is_tag_char(c) { c } else { '-' }).collect();
        if fixed.chars().any(|c| c.is_ascii_alphanumeric()) {
            message.push_str(&format!(" (did you mean {fixed:?}?)"));
        }
    }
    Err(message)
}

/// `retries = N`, a small integer.
fn parse_retries(value: &Expr) -> syn::Result<u32> {
    match ungroup(value) {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) => match int.base10_parse::<u32>() {
            Ok(n) if n <= 10 => Ok(n),
            _ => Err(syn::Error::new(int.span(), "retries must be between 0 and 10; write `retries = 2`")),
        },
        other => Err(syn::Error::new_spanned(other, "expected a number of retries: `retries = 2`")),
    }
}

/// `requires = [..]`.
fn parse_requires(value: &Expr) -> syn::Result<Vec<String>> {
    let mut errors = Errors::default();
    let mut capabilities: Vec<String> = Vec::new();
    for lit in string_list("requires", value, &mut errors) {
        let capability = lit.value();
        if let Some(problem) = crate::names::prefixed_capability_error(&capability) {
            errors.at(lit.span(), problem.to_string());
        } else if capabilities.contains(&capability) {
            errors.at(lit.span(), format!("duplicate capability {capability:?}"));
        } else if crate::names::is_prefixed_capability(&capability) {
            capabilities.push(capability);
        } else if !CAPABILITIES.contains(&capability.as_str()) {
            errors.at(
                lit.span(),
                format!(
                    "unknown capability {capability:?}; valid capabilities: {}, `bin:PROGRAM`, `custom:NAME`{}",
                    CAPABILITIES.join(", "),
                    suggestion(&capability, CAPABILITIES)
                ),
            );
        } else if capabilities.contains(&capability) {
            errors.at(lit.span(), format!("duplicate capability {capability:?}"));
        } else {
            capabilities.push(capability);
        }
    }
    errors.finish(capabilities)
}

/// `timeout = ".."`, parsed with `humantime`, in whole milliseconds.
fn parse_timeout(value: &Expr) -> syn::Result<u64> {
    let Some(lit) = lit_str(value) else {
        let hint = match ungroup(value) {
            Expr::Lit(syn::ExprLit { lit: Lit::Int(int), .. }) => {
                let unit = if int.suffix().is_empty() { "s" } else { int.suffix() };
                format!(r#" (write `"{}{unit}"`)"#, int.base10_digits())
            }
            _ => String::new(),
        };
        return Err(syn::Error::new_spanned(
            value,
            format!(r#"expected the timeout as a string, e.g. `timeout = "90s"`{hint}"#),
        ));
    };
    let text = lit.value();
    let duration = humantime::parse_duration(&text)
        .map_err(|e| syn::Error::new(lit.span(), format!("invalid timeout {text:?}: {e}; {DURATION_EXAMPLES}")))?;
    if duration.is_zero() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "timeout {text:?} is zero; give a positive duration, or remove `timeout` to use \
                 the harness default"
            ),
        ));
    }
    match u64::try_from(duration.as_millis()) {
        Ok(0) => {
            Err(syn::Error::new(lit.span(), format!("timeout {text:?} is shorter than 1ms, the timeout resolution")))
        }
        Ok(ms) => Ok(ms),
        Err(_) => Err(syn::Error::new(lit.span(), format!("timeout {text:?} is too large; {DURATION_EXAMPLES}"))),
    }
}

/// `ignore` or `ignore = ".."`.
fn parse_ignore(value: Option<&Expr>) -> syn::Result<Ignore> {
    let Some(value) = value else {
        return Ok(Ignore::Yes);
    };
    match lit_str(value) {
        Some(reason) if reason.value().trim().is_empty() => Err(syn::Error::new(
            reason.span(),
            r#"empty ignore reason; write `ignore` alone, or give a reason: `ignore = "flaky on CI"`"#,
        )),
        Some(reason) => Ok(Ignore::Reason(reason.value())),
        None => Err(syn::Error::new_spanned(
            value,
            format!(r#"expected a reason string: `ignore = "flaky on CI"`, or `ignore` alone{}"#, quote_hint(value)),
        )),
    }
}

/// `name = ".."`.
fn parse_name(value: &Expr) -> syn::Result<String> {
    let Some(lit) = lit_str(value) else {
        return Err(syn::Error::new_spanned(
            value,
            format!(r#"expected the name as a string: `name = "custom name"`{}"#, quote_hint(value)),
        ));
    };
    let name = lit.value();
    if name.trim().is_empty() {
        return Err(syn::Error::new(lit.span(), "empty test name; remove `name` to use the function name"));
    }
    if name.chars().any(char::is_control) {
        return Err(syn::Error::new(lit.span(), "a test name cannot contain control characters"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> Args {
        parse_args(tokens).unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    /// Every error message, in order.
    fn errors(tokens: TokenStream) -> Vec<String> {
        match parse_args(tokens) {
            Ok(args) => panic!("expected errors, got {args:?}"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn error(tokens: TokenStream) -> String {
        let errors = errors(tokens);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn no_arguments() {
        assert_eq!(parse(quote!()), Args::default());
    }

    #[test]
    fn every_argument() {
        let args = parse(quote! {
            tags = ["smoke", "net-partition", "a_1"],
            timeout = "1m 30s",
            ignore = "flaky on CI",
            requires = ["root", "cgroups", "freezer", "netns", "nft", "elixir", "python3", "tmpfs"],
            name = "custom name",
        });
        assert_eq!(
            args,
            Args {
                tags: vec!["smoke".into(), "net-partition".into(), "a_1".into()],
                timeout_ms: Some(90_000),
                ignore: Ignore::Reason("flaky on CI".into()),
                requires: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
                name: Some("custom name".into()),
                serial: false,
                retries: 0,
            }
        );
    }

    #[test]
    fn ignore_without_reason() {
        assert_eq!(parse(quote!(ignore)).ignore, Ignore::Yes);
        assert_eq!(parse(quote!(ignore,)).ignore, Ignore::Yes);
        assert_eq!(parse(quote!(ignore, tags = [])).ignore, Ignore::Yes);
    }

    #[test]
    fn empty_lists() {
        let args = parse(quote!(tags = [], requires = []));
        assert!(args.tags.is_empty() && args.requires.is_empty());
    }

    #[test]
    fn timeouts() {
        let ms = |t: &str| parse(quote!(timeout = #t)).timeout_ms.unwrap();
        assert_eq!(ms("90s"), 90_000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("2h"), 7_200_000);
        assert_eq!(ms("1m 30s"), 90_000);
        assert_eq!(ms("1.5s"), 1_500);
        assert_eq!(ms("1500us"), 1); // whole milliseconds, rounded down
    }

    #[test]
    fn raw_strings_and_raw_keys() {
        let args = parse(quote!(r#name = r"x", tags = [r"y"]));
        assert_eq!(args.name.as_deref(), Some("x"));
        assert_eq!(args.tags, ["y"]);
    }

    #[test]
    fn values_inside_macro_rules_groups() {
        // `macro_rules!` wraps `$e:expr` in an invisible group.
        let group = proc_macro2::Group::new(proc_macro2::Delimiter::None, quote!("30s"));
        assert_eq!(parse(quote!(timeout = #group)).timeout_ms, Some(30_000));
    }

    #[test]
    fn unknown_keys() {
        assert_eq!(
            error(quote!(tag = ["smoke"])),
            "unknown key `tag`; valid keys: tags, timeout, ignore, requires, name, serial, retries (did you mean `tags`?)"
        );
        assert_eq!(
            error(quote!(flaky)),
            "unknown key `flaky`; valid keys: tags, timeout, ignore, requires, name, serial, retries"
        );
        assert!(error(quote!(r#type = 1)).starts_with("unknown key `type`"));
    }

    #[test]
    fn duplicate_keys() {
        assert_eq!(error(quote!(timeout = "1s", timeout = "2s")), "duplicate key `timeout`; give each key once");
        assert_eq!(
            error(quote!(tags = ["a"], ignore, tags = ["b"])),
            "duplicate key `tags`; give each key once (put all values in one list)"
        );
    }

    #[test]
    fn several_errors_at_once() {
        let all = errors(quote!(tag = [], timeout = "90", requires = ["rooot"], name = 1));
        assert_eq!(all.len(), 4, "{all:#?}");
        assert!(all[0].starts_with("unknown key `tag`"));
        assert!(all[1].starts_with("invalid timeout \"90\""));
        assert!(all[2].starts_with("unknown capability \"rooot\""));
        assert!(all[3].starts_with("expected the name as a string"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            error(quote!("smoke")),
            "expected `key` or `key = value`; valid keys: tags, timeout, ignore, requires, name, serial, retries"
        );
        assert_eq!(error(quote!(tags = )), r#"expected a value after `tags =`; write `tags = ["smoke", "net"]`"#);
        assert_eq!(
            error(quote!(tags("smoke"))),
            r#"expected `=` or `,` after `tags`; write `tags = ["smoke", "net"]`"#
        );
        assert_eq!(error(quote!(name = "a" "b")), "expected `,` after the value of `name`");
        assert_eq!(error(quote!(a::b)), "expected `=` or `,` after `a`");
    }

    #[test]
    fn missing_values() {
        assert_eq!(error(quote!(tags)), r#"`tags` needs a value: `tags = ["smoke", "net"]`"#);
        assert_eq!(error(quote!(timeout)), r#"`timeout` needs a value: `timeout = "90s"`"#);
        assert_eq!(error(quote!(name)), r#"`name` needs a value: `name = "custom name"`"#);
        assert_eq!(error(quote!(requires)), r#"`requires` needs a value: `requires = ["root", "cgroups"]`"#);
    }

    #[test]
    fn wrong_value_types() {
        assert_eq!(error(quote!(tags = "smoke")), r#"expected a list: `tags = ["smoke"]`"#);
        assert_eq!(error(quote!(tags = smoke)), r#"expected a list of strings: `tags = ["smoke", "net"]`"#);
        assert_eq!(error(quote!(tags = [smoke])), r#"expected a string literal (write `"smoke"`)"#);
        assert_eq!(error(quote!(tags = [1])), "expected a string literal");
        assert_eq!(error(quote!(requires = "root")), r#"expected a list: `requires = ["root"]`"#);
        assert_eq!(
            error(quote!(timeout = 90)),
            r#"expected the timeout as a string, e.g. `timeout = "90s"` (write `"90s"`)"#
        );
        assert_eq!(
            error(quote!(timeout = 500ms)),
            r#"expected the timeout as a string, e.g. `timeout = "90s"` (write `"500ms"`)"#
        );
        assert_eq!(
            error(quote!(ignore = true)),
            r#"expected a reason string: `ignore = "flaky on CI"`, or `ignore` alone"#
        );
        assert_eq!(
            error(quote!(name = smoke)),
            r#"expected the name as a string: `name = "custom name"` (write `"smoke"`)"#
        );
        assert!(error(quote!(name = b"x")).starts_with("expected the name as a string"));
    }

    #[test]
    fn bad_durations() {
        assert_eq!(
            error(quote!(timeout = "90")),
            r#"invalid timeout "90": time unit needed, for example 90sec or 90ms; write a duration like "90s", "1m 30s" or "500ms""#
        );
        assert!(
            error(quote!(timeout = "90 parsecs"))
                .starts_with(r#"invalid timeout "90 parsecs": unknown time unit "parsecs", supported units:"#)
        );
        assert!(error(quote!(timeout = "")).starts_with(r#"invalid timeout "": value was empty"#));
        assert!(error(quote!(timeout = "-1s")).starts_with(r#"invalid timeout "-1s""#));
        assert_eq!(
            error(quote!(timeout = "0s")),
            r#"timeout "0s" is zero; give a positive duration, or remove `timeout` to use the harness default"#
        );
        assert_eq!(error(quote!(timeout = "500us")), r#"timeout "500us" is shorter than 1ms, the timeout resolution"#);
        assert!(error(quote!(timeout = "600000000000y")).starts_with("invalid timeout"));
        assert!(
            error(quote!(timeout = "20000000000000000s")).starts_with(r#"timeout "20000000000000000s" is too large"#)
        );
    }

    #[test]
    fn bad_tags() {
        assert_eq!(error(quote!(tags = [""])), r#"empty tag; a tag is a name like "smoke" or "net-partition""#);
        assert_eq!(
            error(quote!(tags = ["!slow"])),
            r#"a tag cannot start with `!`: `!` excludes a tag when selecting tests (`--tag '!slow'`); here, write the tag itself: "slow""#
        );
        assert_eq!(
            error(quote!(tags = ["Net Partition"])),
            r#"invalid character 'N' in tag "Net Partition"; tags use lowercase letters, digits, `_` and `-` (did you mean "net-partition"?)"#
        );
        assert_eq!(
            error(quote!(tags = ["café"])),
            r#"invalid character 'é' in tag "café"; tags use lowercase letters, digits, `_` and `-`"#
        );
        assert_eq!(
            error(quote!(tags = ["*"])),
            r#"invalid character '*' in tag "*"; tags use lowercase letters, digits, `_` and `-`"#
        );
        assert_eq!(error(quote!(tags = ["a", "b", "a"])), r#"duplicate tag "a""#);
        assert_eq!(errors(quote!(tags = ["A", "", "!x", 1])).len(), 4);
    }

    #[test]
    fn capabilities() {
        assert_eq!(
            error(quote!(requires = ["rooot"])),
            r#"unknown capability "rooot"; valid capabilities: root, cgroups, freezer, netns, nft, elixir, python3, tmpfs, `bin:PROGRAM`, `custom:NAME` (did you mean `root`?)"#
        );
        assert_eq!(
            error(quote!(requires = ["gpu"])),
            r#"unknown capability "gpu"; valid capabilities: root, cgroups, freezer, netns, nft, elixir, python3, tmpfs, `bin:PROGRAM`, `custom:NAME`"#
        );
        assert_eq!(error(quote!(requires = ["root", "root"])), r#"duplicate capability "root""#);
    }

    #[test]
    fn bad_ignore_and_name() {
        assert_eq!(
            error(quote!(ignore = " ")),
            r#"empty ignore reason; write `ignore` alone, or give a reason: `ignore = "flaky on CI"`"#
        );
        assert_eq!(error(quote!(name = "")), "empty test name; remove `name` to use the function name");
        assert_eq!(error(quote!(name = "a\nb")), "a test name cannot contain control characters");
    }

    #[test]
    fn tag_rules() {
        for ok in ["a", "smoke", "net-partition", "a_b", "0"] {
            assert_eq!(check_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", "!a", "A", "a b", "a.b", "a:b", "ä"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod ergonomics_tests {
    use quote::quote;

    use super::*;

    #[test]
    fn serial_retries_and_prefixed_capabilities() {
        let a = parse_args(quote!(serial, retries = 2, requires = ["bin:haproxy", "custom:redis", "root"])).unwrap();
        assert!(a.serial);
        assert_eq!(a.retries, 2);
        assert_eq!(a.requires, vec!["bin:haproxy", "custom:redis", "root"]);
        let e: Vec<String> = parse_args(quote!(serial = true, retries = "2", requires = ["bin:", "bin:a b"]))
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(e[0].contains("`serial` takes no value"), "{e:#?}");
        assert!(e[1].contains("retries = 2"), "{e:#?}");
        assert!(e[2].contains("need a name after the colon"), "{e:#?}");
        assert!(e[3].contains("no spaces"), "{e:#?}");
    }
}
