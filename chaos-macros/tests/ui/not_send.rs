use std::rc::Rc;

use chaos_harness::prelude::*;

#[chaos_test]
async fn holds_rc_across_await(_cx: &mut Chaos) {
    let shared = Rc::new(());
    std::future::ready(()).await;
    drop(shared);
}

fn main() {}
