//! The `#[chaos_test]` attribute macro (placeholder; see issue [foundation]).
use proc_macro::TokenStream;

/// Marks a chaos test.
#[proc_macro_attribute]
pub fn chaos_test(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
