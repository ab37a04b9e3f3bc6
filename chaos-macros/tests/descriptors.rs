//! What `#[chaos_test]` registers at run time: the descriptors collected by `inventory`, and
//! their bodies called through the generated adapters.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chaos_harness::__private::{Ignore, TestBody, TestDescriptor, inventory};
use chaos_harness::prelude::*;

const PLAIN_LINE: u32 = line!() + 2;
#[chaos_test]
fn plain() {}

#[chaos_test(
    tags = ["smoke", "net-partition"],
    timeout = "1m 30s",
    ignore = "flaky",
    requires = ["root", "netns"],
    name = "custom name"
)]
async fn every_argument(cx: &mut Chaos) -> ChaosResult {
    check_seed(cx)
}

#[chaos_test(serial, retries = 3, requires = ["bin:haproxy", "custom:x"])]
fn serial_retried() {}

#[chaos_test(ignore)]
fn sync_with_context(cx: &mut chaos_harness::Chaos) -> Result<(), std::io::Error> {
    if cx.seed() == 7 { Ok(()) } else { Err(std::io::Error::other("wrong seed")) }
}

#[chaos_test]
async fn async_failing() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("async failure"))
}

mod nested {
    use chaos_harness::prelude::*;

    #[chaos_test(tags = ["nested"])]
    pub fn r#in_module(_: &mut Chaos) -> ChaosResult {
        Ok(())
    }
}

fn check_seed(cx: &Chaos) -> ChaosResult {
    if cx.seed() == 7 { Ok(()) } else { Err(std::io::Error::other("wrong seed").into()) }
}

fn descriptor(name: &str) -> &'static TestDescriptor {
    inventory::iter::<TestDescriptor>
        .into_iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no test {name:?} registered"))
}

/// Polls a future that completes without waiting (every test body here does).
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the test body waited"),
    }
}

/// Runs a registered body with a context whose seed is 7.
fn run(d: &TestDescriptor) -> ChaosResult {
    let mut cx = Chaos::for_doctest(d.name, 7);
    let result = match d.body {
        TestBody::Async(body) => now(body(&mut cx)),
        TestBody::Sync(body) => body(&mut cx),
    };
    cx.sandbox().teardown().unwrap();
    result
}

#[test]
fn defaults_and_location() {
    let d = descriptor("plain");
    assert!(!d.custom_name);
    assert_eq!(d.module_path, "descriptors");
    assert_eq!(d.full_name(), "plain");
    assert_eq!(d.file, file!());
    assert_eq!((d.line, d.column), (PLAIN_LINE, 4), "position of the function's name");
    assert!(d.tags.is_empty() && d.requires.is_empty());
    assert_eq!(d.timeout_ms, None);
    assert_eq!(d.ignore, Ignore::No);
    assert!(matches!(d.body, TestBody::Sync(_)));
    run(d).unwrap();
}

#[test]
fn every_argument_is_recorded() {
    let d = descriptor("custom name");
    assert!(d.custom_name);
    assert_eq!(d.full_name(), "custom name");
    assert_eq!(d.tags, ["smoke", "net-partition"]);
    assert_eq!(d.timeout_ms, Some(90_000));
    assert_eq!(d.ignore, Ignore::Reason("flaky"));
    assert_eq!(d.requires, ["root", "netns"]);
    assert!(matches!(d.body, TestBody::Async(_)));
    run(d).unwrap(); // the body saw the context (seed 7)
}

#[test]
fn results_are_converted() {
    let d = descriptor("sync_with_context");
    assert_eq!(d.ignore, Ignore::Yes);
    assert!(matches!(d.body, TestBody::Sync(_)));
    run(d).unwrap();

    let d = descriptor("async_failing");
    assert!(matches!(d.body, TestBody::Async(_)));
    assert_eq!(run(d).unwrap_err().to_string(), "async failure");
}

#[test]
fn module_path_and_raw_identifiers() {
    let d = descriptor("in_module");
    assert_eq!(d.module_path, "descriptors::nested");
    assert_eq!(d.full_name(), "nested::in_module");
    assert_eq!(d.tags, ["nested"]);
    run(d).unwrap();
}

#[test]
fn each_test_is_registered_once() {
    let names: Vec<&str> = inventory::iter::<TestDescriptor>.into_iter().map(|d| d.name).collect();
    assert_eq!(names.len(), 6, "{names:?}");
}

#[test]
fn functions_can_still_be_called_directly() {
    plain();
    let mut cx = Chaos::for_doctest("direct", 7);
    sync_with_context(&mut cx).unwrap();
    now(every_argument(&mut cx)).unwrap();
    nested::in_module(&mut cx).unwrap();
    assert!(now(async_failing()).is_err());
    cx.sandbox().teardown().unwrap();
}

#[test]
fn serial_retries_and_open_capabilities_are_registered() {
    let d = descriptor("serial_retried");
    assert!(d.serial);
    assert_eq!(d.retries, 3);
    assert_eq!(d.requires, &["bin:haproxy", "custom:x"]);
    assert!(!descriptor("plain").serial);
    assert_eq!(descriptor("plain").retries, 0);
}
