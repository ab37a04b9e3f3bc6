//! The annotated function: which signatures are supported, and which attributes conflict with
//! `#[chaos_test]`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, FnArg, ItemFn, Path, Type};

use crate::diag::Errors;

/// Appended to every signature error.
pub(crate) const SUPPORTED: &str = "supported signatures: `async fn name(cx: &mut Chaos) -> R`, \
     `async fn name() -> R`, `fn name(cx: &mut Chaos) -> R` and `fn name() -> R`, \
     where R is `()` or `Result<(), E>`";

/// What the adapter has to do to call the test function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// `async fn`: the body is awaited.
    pub(crate) is_async: bool,
    /// The function takes the `&mut Chaos` context.
    pub(crate) takes_context: bool,
}

/// Checks the function's signature and attributes, reporting every problem found.
pub(crate) fn check(function: &ItemFn) -> syn::Result<Shape> {
    let mut errors = Errors::default();
    for attr in &function.attrs {
        if let Some(message) = conflict(attr) {
            errors.spanned(attr, message);
        }
    }

    let sig = &function.sig;
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, format!("a chaos test cannot be a `const fn`; {SUPPORTED}"));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(unsafety, format!("a chaos test cannot be an `unsafe fn`; {SUPPORTED}"));
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, format!("a chaos test cannot have an `extern` ABI; {SUPPORTED}"));
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            format!(
                "a chaos test cannot be generic: the runner has no types or lifetimes to give \
                 it; {SUPPORTED}"
            ),
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(where_clause, format!("a chaos test cannot have a `where` clause; {SUPPORTED}"));
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, format!("a chaos test cannot be variadic; {SUPPORTED}"));
    }

    let mut inputs = sig.inputs.iter();
    let takes_context = match inputs.next() {
        None => false,
        Some(FnArg::Receiver(receiver)) => {
            errors.spanned(receiver, format!("a chaos test cannot take `self`; write a free function; {SUPPORTED}"));
            true
        }
        Some(FnArg::Typed(arg)) => {
            if let Err(problem) = check_context_type(&arg.ty) {
                errors.spanned(&arg.ty, format!("{problem}; {SUPPORTED}"));
            }
            true
        }
    };
    let extra: TokenStream = inputs.map(ToTokens::to_token_stream).collect();
    if !extra.is_empty() {
        errors
            .spanned(extra, format!("a chaos test takes at most one argument, the context `&mut Chaos`; {SUPPORTED}"));
    }

    errors.finish(Shape { is_async: sig.asyncness.is_some(), takes_context })
}

/// Why `attr` cannot be combined with `#[chaos_test]`, if it cannot.
pub(crate) fn conflict(attr: &Attribute) -> Option<String> {
    let path = attr.path();
    let last = path.segments.last()?.ident.to_string();
    let shown = path_to_string(path);
    match last.as_str() {
        "test" => Some(format!(
            "remove `#[{shown}]`: #[chaos_test] already makes this a test, registered with the \
             chaos runner{}",
            if shown.ends_with("tokio::test") { ", which also gives every test its own tokio runtime" } else { "" }
        )),
        "chaos_test" => Some(format!("duplicate `#[{shown}]`: the test would be registered twice")),
        "ignore" if path.get_ident().is_some() => Some(
            "`#[ignore]` has no effect on a chaos test; write `#[chaos_test(ignore)]` or \
             `#[chaos_test(ignore = \"reason\")]`"
                .into(),
        ),
        "should_panic" if path.get_ident().is_some() => Some(
            "`#[should_panic]` is not supported by the chaos runner; check for the expected \
             failure inside the test and return an error if it does not happen"
                .into(),
        ),
        _ => None,
    }
}

/// `a::b::c`, with the leading `::` if written.
fn path_to_string(path: &Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let leading = if path.leading_colon.is_some() { "::" } else { "" };
    format!("{leading}{}", segments.join("::"))
}

/// The context parameter must be `&mut Chaos` (or `&mut path::to::Chaos`, `&'_ mut Chaos`).
fn check_context_type(ty: &Type) -> Result<(), &'static str> {
    match ty {
        Type::Group(group) => check_context_type(&group.elem),
        Type::Paren(paren) => check_context_type(&paren.elem),
        Type::Reference(reference) => {
            if !is_chaos(&reference.elem) {
                Err("the argument of a chaos test must be the test context, `&mut Chaos`")
            } else if reference.mutability.is_none() {
                Err("the test context must be borrowed mutably: `&mut Chaos`")
            } else if reference.lifetime.as_ref().is_some_and(|l| l.ident != "_") {
                Err("remove the lifetime: the context is borrowed for the whole test, `&mut Chaos`")
            } else {
                Ok(())
            }
        }
        ty if is_chaos(ty) => Err("take the test context by mutable reference: `&mut Chaos`"),
        _ => Err("the argument of a chaos test must be the test context, `&mut Chaos`"),
    }
}

/// `Chaos`, `chaos_harness::Chaos`, `::chaos_harness::Chaos`, ...
fn is_chaos(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_chaos(&group.elem),
        Type::Paren(paren) => is_chaos(&paren.elem),
        Type::Path(path) => {
            path.qself.is_none()
                && path.path.segments.last().is_some_and(|last| last.ident == "Chaos" && last.arguments.is_empty())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn shape(tokens: TokenStream) -> Shape {
        let function: ItemFn = syn::parse2(tokens).unwrap();
        check(&function).unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    /// Every error message, each with the text it points at.
    fn errors(tokens: TokenStream) -> Vec<String> {
        let function: ItemFn = syn::parse2(tokens).unwrap();
        match check(&function) {
            Ok(shape) => panic!("expected errors, got {shape:?}"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn error(tokens: TokenStream) -> String {
        let errors = errors(tokens);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.into_iter().next().unwrap()
    }

    const ASYNC_CX: Shape = Shape { is_async: true, takes_context: true };
    const ASYNC: Shape = Shape { is_async: true, takes_context: false };
    const SYNC_CX: Shape = Shape { is_async: false, takes_context: true };
    const SYNC: Shape = Shape { is_async: false, takes_context: false };

    #[test]
    fn supported_signatures() {
        assert_eq!(
            shape(quote!(
                async fn f(cx: &mut Chaos) -> ChaosResult {}
            )),
            ASYNC_CX
        );
        assert_eq!(
            shape(quote!(
                async fn f() {}
            )),
            ASYNC
        );
        assert_eq!(
            shape(quote!(
                fn f(cx: &mut Chaos) -> Result<(), E> {}
            )),
            SYNC_CX
        );
        assert_eq!(
            shape(quote!(
                pub fn f() {}
            )),
            SYNC
        );
    }

    #[test]
    fn context_spellings() {
        for tokens in [
            quote!(
                fn f(_cx: &mut Chaos) {}
            ),
            quote!(
                fn f(_: &mut Chaos) {}
            ),
            quote!(
                fn f(mut cx: &mut Chaos) {}
            ),
            quote!(
                fn f(cx: &mut chaos_harness::Chaos) {}
            ),
            quote!(
                fn f(cx: &mut ::chaos_harness::Chaos) {}
            ),
            quote!(
                fn f(cx: &'_ mut Chaos) {}
            ),
            quote!(
                fn f(#[allow(unused)] cx: &mut (Chaos)) {}
            ),
            quote!(
                fn f(cx: &mut Chaos) {}
            ),
        ] {
            assert_eq!(shape(tokens), SYNC_CX);
        }
    }

    #[test]
    fn qualifiers() {
        assert!(
            error(quote!(
                const fn f() {}
            ))
            .starts_with("a chaos test cannot be a `const fn`; supported")
        );
        assert!(
            error(quote!(
                unsafe fn f() {}
            ))
            .starts_with("a chaos test cannot be an `unsafe fn`;")
        );
        assert!(
            error(quote!(
                extern "C" fn f() {}
            ))
            .starts_with("a chaos test cannot have an `extern` ABI;")
        );
        let variadic = errors(quote!(
            unsafe extern "C" fn f(a: u8, ...) {}
        ));
        assert_eq!(variadic.len(), 4, "{variadic:#?}");
        assert!(variadic[2].starts_with("a chaos test cannot be variadic; supported"));
        assert!(variadic[3].starts_with("the argument of a chaos test must be"));
    }

    #[test]
    fn generics() {
        assert!(
            error(quote!(
                fn f<T>() {}
            ))
            .starts_with("a chaos test cannot be generic")
        );
        assert!(
            error(quote!(
                fn f<'a>(cx: &mut Chaos) {}
            ))
            .starts_with("a chaos test cannot be generic")
        );
        assert!(
            error(quote!(
                fn f()
                where
                    u8: Copy,
                {
                }
            ))
            .starts_with("a chaos test cannot have a `where` clause")
        );
        assert!(
            error(quote!(
                fn f(x: impl Sized) {}
            ))
            .starts_with("the argument of a chaos test must be")
        );
    }

    #[test]
    fn arguments() {
        assert_eq!(
            error(quote!(
                fn f(cx: &mut Chaos, n: u32) {}
            )),
            format!("a chaos test takes at most one argument, the context `&mut Chaos`; {SUPPORTED}")
        );
        assert!(
            error(quote!(
                fn f(&mut self) {}
            ))
            .starts_with("a chaos test cannot take `self`")
        );
        assert!(
            error(quote!(
                fn f(self: Box<Self>) {}
            ))
            .starts_with("a chaos test cannot take `self`")
        );
        assert_eq!(
            error(quote!(
                fn f(cx: &Chaos) {}
            )),
            format!("the test context must be borrowed mutably: `&mut Chaos`; {SUPPORTED}")
        );
        assert!(
            error(quote!(
                fn f(cx: Chaos) {}
            ))
            .starts_with("take the test context by mutable reference")
        );
        assert!(
            error(quote!(
                fn f(cx: &mut Chaos<T>) {}
            ))
            .starts_with("the argument of a chaos test must be")
        );
        assert!(
            error(quote!(
                fn f(cx: &mut <X as Y>::Chaos) {}
            ))
            .starts_with("the argument of a chaos test must be")
        );
        assert!(
            error(quote!(
                fn f(cx: &'static mut Chaos) {}
            ))
            .starts_with("remove the lifetime")
        );
        assert!(
            error(quote!(
                fn f(n: u32) {}
            ))
            .starts_with("the argument of a chaos test must be")
        );
    }

    #[test]
    fn conflicting_attributes() {
        let all = errors(quote! {
            #[test]
            #[tokio::test(flavor = "multi_thread")]
            #[chaos_harness::chaos_test]
            #[ignore]
            #[should_panic]
            #[allow(unused)]
            #[doc = "fine"]
            #[cfg(all())]
            fn f() {}
        });
        assert_eq!(all.len(), 5, "{all:#?}");
        assert_eq!(
            all[0],
            "remove `#[test]`: #[chaos_test] already makes this a test, registered with the chaos runner"
        );
        assert_eq!(
            all[1],
            "remove `#[tokio::test]`: #[chaos_test] already makes this a test, registered with the \
             chaos runner, which also gives every test its own tokio runtime"
        );
        assert_eq!(all[2], "duplicate `#[chaos_harness::chaos_test]`: the test would be registered twice");
        assert!(all[3].starts_with("`#[ignore]` has no effect on a chaos test"));
        assert!(all[4].starts_with("`#[should_panic]` is not supported"));
    }

    #[test]
    fn many_errors_at_once() {
        let all = errors(quote!(
            #[test]
            const unsafe fn f<T>(cx: &Chaos, n: u32)
            where
                T: Copy,
            {
            }
        ));
        assert_eq!(all.len(), 7, "{all:#?}");
    }
}
