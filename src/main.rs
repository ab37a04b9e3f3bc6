//! The `chaos` command-line interface.
fn main() {
    println!("chaos: not yet implemented");
}
