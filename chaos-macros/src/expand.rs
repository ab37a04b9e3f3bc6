//! Code generation: the user's function (its body starting with local `println!`, `print!`,
//! `eprintln!` and `eprint!` macros that write to the test's capture, as libtest captures
//! them), followed by a `const _: () = { .. };` block holding the adapter and the
//! `inventory::submit!` of the test's `TestDescriptor`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Item, ItemFn, ReturnType};

use crate::args::{self, Args, Ignore};
use crate::signature::{self, Shape};

/// The whole macro: `#[chaos_test(attr)] item`.
///
/// On error, emits the errors followed by the function (without the attributes that conflict
/// with `#[chaos_test]`), so that the rest of the crate still resolves it and only the real
/// problems are reported.
pub(crate) fn chaos_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut function = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(function)) => function,
        Ok(other) => {
            let error = syn::Error::new_spanned(
                other,
                "#[chaos_test] applies to functions with a body, like \
                 `async fn name(cx: &mut Chaos) -> ChaosResult { .. }`",
            );
            return with_item(error, item);
        }
        Err(error) => return with_item(error, item),
    };

    let error = match (args::parse_args(attr), signature::check(&function)) {
        (Ok(args), Ok(shape)) => return expand(&function, &args, shape),
        (Err(mut args), Err(shape)) => {
            args.combine(shape);
            args
        }
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => error,
    };
    function.attrs.retain(|attr| signature::conflict(attr).is_none());
    function.sig.variadic = None;
    with_item(error, quote!(#function))
}

/// `compile_error!`s followed by `item`.
fn with_item(error: syn::Error, item: TokenStream) -> TokenStream {
    let mut tokens = error.into_compile_error();
    tokens.extend(item);
    tokens
}

/// The expansion of a valid test: see the crate docs for its shape.
pub(crate) fn expand(function: &ItemFn, args: &Args, shape: Shape) -> TokenStream {
    let ident = &function.sig.ident;
    // Generated items carry the function name's span: errors in them point at the test, and
    // `line!()`/`column!()` give the position of the name.
    let span = ident.span();
    // Never equal to `ident`, so the adapter cannot shadow the function it calls.
    let adapter = format_ident!("__chaos_test_{}", ident.unraw(), span = span);

    let name = args.name.clone().unwrap_or_else(|| ident.unraw().to_string());
    let custom_name = args.name.is_some();
    let tags = &args.tags;
    let requires = &args.requires;
    let serial = args.serial;
    let retries = args.retries;
    let timeout_ms = match args.timeout_ms {
        Some(ms) => quote_spanned!(span=> ::core::option::Option::Some(#ms)),
        None => quote_spanned!(span=> ::core::option::Option::None),
    };
    let ignore = match &args.ignore {
        Ignore::No => quote_spanned!(span=> ::chaos_harness::__private::Ignore::No),
        Ignore::Yes => quote_spanned!(span=> ::chaos_harness::__private::Ignore::Yes),
        Ignore::Reason(reason) => {
            quote_spanned!(span=> ::chaos_harness::__private::Ignore::Reason(#reason))
        }
    };

    // A return type without `IntoTestResult` is reported at the call, which spans from the
    // function's name to its return type.
    let result_span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => span,
    };
    let (context, call) = if shape.takes_context {
        // Mixed-site hygiene: the parameter cannot shadow a test function named `cx`.
        let cx = Ident::new("cx", Span::mixed_site().located_at(span));
        (quote!(#cx), quote_spanned!(result_span=> #ident(#cx)))
    } else {
        (quote_spanned!(span=> _), quote_spanned!(result_span=> #ident()))
    };
    let call = if shape.is_async { quote_spanned!(result_span=> #call.await) } else { call };
    let result = quote_spanned! {result_span=>
        ::chaos_harness::__private::IntoTestResult::into_test_result(#call)
    };
    let (returns, body, variant) = if shape.is_async {
        (
            quote_spanned!(span=> ::chaos_harness::__private::BoxTestFuture<'_>),
            quote_spanned!(span=> ::std::boxed::Box::pin(async move { #result })),
            quote_spanned!(span=> Async),
        )
    } else {
        (quote_spanned!(span=> ::chaos_harness::ChaosResult), result, quote_spanned!(span=> Sync))
    };
    // A `#[cfg]` that removes the function must remove its registration too.
    let cfgs = function.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));
    let function = with_captured_prints(function);

    quote_spanned! {span=>
        #function

        #(#cfgs)*
        const _: () = {
            #[allow(deprecated, non_snake_case)]
            fn #adapter(#context: &mut ::chaos_harness::Chaos) -> #returns {
                #body
            }

            ::chaos_harness::__private::inventory::submit! {
                ::chaos_harness::__private::TestDescriptor {
                    name: #name,
                    custom_name: #custom_name,
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    column: ::core::column!(),
                    tags: &[#(#tags),*],
                    timeout_ms: #timeout_ms,
                    ignore: #ignore,
                    requires: &[#(#requires),*],
                    serial: #serial,
                    retries: #retries,
                    body: ::chaos_harness::__private::TestBody::#variant(#adapter),
                }
            }
        };
    }
}

/// Local macros that shadow the standard `println!` family in the body: what the body prints
/// goes to the test's capture (shown on failure or with `--nocapture`), as under libtest.
/// (A glob-imported `println` would be ambiguous with the standard prelude's, E0659.)
fn capture_macros() -> TokenStream {
    let mut out = TokenStream::new();
    for (name, target) in [
        ("println", "__chaos_println"),
        ("print", "__chaos_print"),
        ("eprintln", "__chaos_eprintln"),
        ("eprint", "__chaos_eprint"),
    ] {
        let name = Ident::new(name, Span::call_site());
        let target = Ident::new(target, Span::call_site());
        out.extend(quote! {
            #[allow(unused_macros)]
            macro_rules! #name { ($($t:tt)*) => { ::chaos_harness::#target!($($t)*) }; }
        });
    }
    out
}

/// The function with [`capture_macros`] at the start of its body.
fn with_captured_prints(function: &ItemFn) -> ItemFn {
    let mut function = function.clone();
    let macros = capture_macros();
    let block: syn::Block = syn::parse_quote!({ #macros });
    let mut stmts = block.stmts;
    stmts.append(&mut function.block.stmts);
    function.block.stmts = stmts;
    function
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion of `#[chaos_test(attr)] item`, as a string of tokens.
    fn expand_str(attr: TokenStream, item: TokenStream) -> String {
        chaos_test(attr, item).to_string()
    }

    #[test]
    fn async_with_context_and_every_argument() {
        let item = quote! {
            /// Docs stay.
            async fn smoke(cx: &mut Chaos) -> ChaosResult { Ok(()) }
        };
        let attr = quote! {
            tags = ["smoke", "net"], timeout = "1m 30s", ignore = "flaky",
            requires = ["root", "netns"], name = "custom",
        };
        let macros = capture_macros();
        let expected = quote! {
            /// Docs stay.
            async fn smoke(cx: &mut Chaos) -> ChaosResult { #macros Ok(()) }

            const _: () = {
                #[allow(deprecated, non_snake_case)]
                fn __chaos_test_smoke(cx: &mut ::chaos_harness::Chaos)
                    -> ::chaos_harness::__private::BoxTestFuture<'_>
                {
                    ::std::boxed::Box::pin(async move {
                        ::chaos_harness::__private::IntoTestResult::into_test_result(smoke(cx).await)
                    })
                }

                ::chaos_harness::__private::inventory::submit! {
                    ::chaos_harness::__private::TestDescriptor {
                        name: "custom",
                        custom_name: true,
                        module_path: ::core::module_path!(),
                        file: ::core::file!(),
                        line: ::core::line!(),
                        column: ::core::column!(),
                        tags: &["smoke", "net"],
                        timeout_ms: ::core::option::Option::Some(90000u64),
                        ignore: ::chaos_harness::__private::Ignore::Reason("flaky"),
                        requires: &["root", "netns"],
                        serial: false,
                        retries: 0u32,
                        body: ::chaos_harness::__private::TestBody::Async(__chaos_test_smoke),
                    }
                }
            };
        };
        assert_eq!(expand_str(attr, item), expected.to_string());
    }

    #[test]
    fn sync_without_context_and_no_arguments() {
        let macros = capture_macros();
        let expected = quote! {
            pub fn r#match() { #macros }

            const _: () = {
                #[allow(deprecated, non_snake_case)]
                fn __chaos_test_match(_: &mut ::chaos_harness::Chaos) -> ::chaos_harness::ChaosResult {
                    ::chaos_harness::__private::IntoTestResult::into_test_result(r#match())
                }

                ::chaos_harness::__private::inventory::submit! {
                    ::chaos_harness::__private::TestDescriptor {
                        name: "match",
                        custom_name: false,
                        module_path: ::core::module_path!(),
                        file: ::core::file!(),
                        line: ::core::line!(),
                        column: ::core::column!(),
                        tags: &[],
                        timeout_ms: ::core::option::Option::None,
                        ignore: ::chaos_harness::__private::Ignore::No,
                        requires: &[],
                        serial: false,
                        retries: 0u32,
                        body: ::chaos_harness::__private::TestBody::Sync(__chaos_test_match),
                    }
                }
            };
        };
        assert_eq!(
            expand_str(
                quote!(),
                quote!(
                    pub fn r#match() {}
                )
            ),
            expected.to_string()
        );
    }

    #[test]
    fn every_signature() {
        const ASYNC: &str = ":: chaos_harness :: __private :: BoxTestFuture < '_ >";
        const SYNC: &str = ":: chaos_harness :: ChaosResult";
        let cases = [
            (
                quote!(
                    async fn f(cx: &mut Chaos) {}
                ),
                "cx",
                ASYNC,
                "f (cx) . await",
                "Async",
            ),
            (
                quote!(
                    async fn f() {}
                ),
                "_",
                ASYNC,
                "f () . await",
                "Async",
            ),
            (
                quote!(
                    fn f(_: &mut chaos_harness::Chaos) {}
                ),
                "cx",
                SYNC,
                "f (cx)",
                "Sync",
            ),
            (
                quote!(
                    fn f() -> Result<(), E> {}
                ),
                "_",
                SYNC,
                "f ()",
                "Sync",
            ),
        ];
        for (item, context, returns, call, variant) in cases {
            let out = expand_str(quote!(), item);
            for expected in [
                format!("fn __chaos_test_f ({context} : & mut :: chaos_harness :: Chaos) -> {returns}"),
                format!("into_test_result ({call})"),
                format!("TestBody :: {variant} (__chaos_test_f)"),
            ] {
                assert!(out.contains(&expected), "{expected}\nnot in\n{out}");
            }
        }
    }

    #[test]
    fn cfg_attributes_are_copied_to_the_registration() {
        let out = expand_str(
            quote!(),
            quote!(
                #[cfg(unix)]
                #[allow(unused)]
                fn f() {}
            ),
        );
        assert!(out.contains("# [cfg (unix)] const _ : () ="), "{out}");
        assert!(!out.contains("# [allow (unused)] const"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_without_conflicting_attributes() {
        let out = expand_str(
            quote!(tag = []),
            quote!(
                #[test]
                #[inline]
                fn f(cx: &mut Chaos, n: u8) {}
            ),
        );
        assert_eq!(out.matches("compile_error !").count(), 3, "{out}");
        assert!(out.contains("unknown key `tag`"), "{out}");
        assert!(out.contains("remove `#[test]`"), "{out}");
        assert!(out.contains("at most one argument"), "{out}");
        assert!(out.ends_with("# [inline] fn f (cx : & mut Chaos , n : u8) { }"), "{out}");
        assert!(!out.contains("submit"), "{out}");
    }

    #[test]
    fn variadic_is_dropped_from_the_kept_function() {
        let out = expand_str(
            quote!(),
            quote!(
                unsafe extern "C" fn f(a: u8, ...) {}
            ),
        );
        assert!(out.ends_with("unsafe extern \"C\" fn f (a : u8 ,) { }"), "{out}");
    }

    #[test]
    fn not_a_function() {
        let out = expand_str(
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert!(out.contains("#[chaos_test] applies to functions with a body"), "{out}");
        assert!(out.ends_with("struct S ;"), "{out}");
    }

    #[test]
    fn unparsable_item_is_passed_through() {
        let out = expand_str(quote!(), quote!(fn));
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.ends_with("fn"), "{out}");
    }
}
