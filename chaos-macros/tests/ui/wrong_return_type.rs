use chaos_harness::prelude::*;

#[chaos_test]
fn returns_a_number() -> u32 {
    0
}

#[chaos_test]
async fn returns_a_value(_cx: &mut Chaos) -> Result<u32, std::io::Error> {
    Ok(0)
}

fn main() {}
