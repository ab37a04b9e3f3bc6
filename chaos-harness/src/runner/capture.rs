//! Per-test capture: tracing events, panics and `println!`/`eprintln!` output of a test are
//! recorded into the test's own buffer, shown on failure and attached to JUnit `system-out`
//! (as libtest does; `--nocapture` prints them as they happen).
//!
//! `println!`, `print!`, `eprintln!` and `eprint!` come with `chaos_harness::prelude::*`:
//! they write to the current test's capture on a test's threads and to the real stdout/stderr
//! anywhere else (a stable-Rust stand-in for libtest's internal output capture).
//!
//! Each test runs on its own thread and tokio runtime; the runner installs the test's
//! [`Capture`] as the thread-local tracing dispatcher on every one of those threads and as the
//! thread's panic slot, so parallel tests never mix their output.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// One test's captured output.
///
/// ```
/// use chaos_harness::runner::capture::Capture;
/// let cap = Capture::new(false);
/// let _guard = cap.install_on_this_thread();
/// tracing::info!("hello");
/// assert!(cap.text().contains("hello"));
/// ```
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Inner>,
}

struct Inner {
    buffer: Mutex<Vec<u8>>,
    panics: Mutex<Vec<String>>,
    echo: bool,
    dispatch: tracing::Dispatch,
}

/// Restores the thread's previous capture state when dropped.
pub struct CaptureGuard {
    _dispatch: tracing::dispatcher::DefaultGuard,
    previous: Option<Capture>,
}

thread_local! {
    static CURRENT: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

impl Capture {
    /// A new, empty capture. With `echo`, output also goes to stderr as it happens
    /// (`--nocapture`).
    pub fn new(echo: bool) -> Self {
        install_panic_hook();
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let writer = BufferWriter { inner: weak.clone() };
            let subscriber = tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_target(true)
                    .with_filter(env_filter()),
            );
            Inner {
                buffer: Mutex::new(Vec::new()),
                panics: Mutex::new(Vec::new()),
                echo,
                dispatch: tracing::Dispatch::new(subscriber),
            }
        });
        Self { inner }
    }

    /// Makes this capture the current one on this thread until the guard drops.
    pub fn install_on_this_thread(&self) -> CaptureGuard {
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        CaptureGuard { _dispatch: tracing::dispatcher::set_default(&self.inner.dispatch), previous }
    }

    /// Appends raw text (e.g. a note from the runner) to the capture.
    pub fn note(&self, text: &str) {
        self.write(text.as_bytes());
    }

    fn write(&self, bytes: &[u8]) {
        write_into(&self.inner, bytes);
    }

    /// Everything captured so far, as text.
    pub fn text(&self) -> String {
        let buf = self.inner.buffer.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Panic messages (with location) recorded on the test's threads, oldest first.
    pub fn panics(&self) -> Vec<String> {
        self.inner.panics.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Writes formatted text to the current test's capture, or to the real stdout (`stderr`
/// false) / stderr when no test runs on this thread or with `--nocapture`. What the prelude's
/// `println!` family expands to.
///
/// ```
/// use chaos_harness::runner::capture::{Capture, print};
/// let cap = Capture::new(false);
/// {
///     let _guard = cap.install_on_this_thread();
///     print(format_args!("captured {}\n", 1), false);
/// }
/// assert_eq!(cap.text(), "captured 1\n");
/// ```
pub fn print(args: std::fmt::Arguments<'_>, stderr: bool) {
    let current = CURRENT.with(|c| c.borrow().clone());
    let real = |bytes: &[u8]| {
        let _ = if stderr { std::io::stderr().write_all(bytes) } else { std::io::stdout().write_all(bytes) };
    };
    match current {
        Some(cap) => {
            let text = std::fmt::format(args);
            cap.inner.buffer.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(text.as_bytes());
            if cap.inner.echo {
                real(text.as_bytes());
            }
        }
        None => real(std::fmt::format(args).as_bytes()),
    }
}

/// `println!` captured per test (see [`print`]); re-exported by the prelude as `println`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chaos_println {
    () => { $crate::runner::capture::print(::core::format_args!("\n"), false) };
    ($($arg:tt)*) => {
        $crate::runner::capture::print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)), false)
    };
}

/// `print!` captured per test (see [`print`]); re-exported by the prelude as `print`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chaos_print {
    ($($arg:tt)*) => { $crate::runner::capture::print(::core::format_args!($($arg)*), false) };
}

/// `eprintln!` captured per test (see [`print`]); re-exported by the prelude as `eprintln`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chaos_eprintln {
    () => { $crate::runner::capture::print(::core::format_args!("\n"), true) };
    ($($arg:tt)*) => {
        $crate::runner::capture::print(::core::format_args!("{}\n", ::core::format_args!($($arg)*)), true)
    };
}

/// `eprint!` captured per test (see [`print`]); re-exported by the prelude as `eprint`.
#[doc(hidden)]
#[macro_export]
macro_rules! __chaos_eprint {
    ($($arg:tt)*) => { $crate::runner::capture::print(::core::format_args!($($arg)*), true) };
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

fn write_into(inner: &Inner, bytes: &[u8]) {
    inner.buffer.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
    if inner.echo {
        let _ = std::io::stderr().write_all(bytes);
    }
}

#[derive(Clone)]
struct BufferWriter {
    inner: std::sync::Weak<Inner>,
}

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(inner) = self.inner.upgrade() {
            write_into(&inner, buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferWriter {
    type Writer = BufferWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `RUST_LOG`-style filtering of captured events (`CHAOS_LOG`, else `RUST_LOG`, else `info`).
fn env_filter() -> tracing_subscriber::EnvFilter {
    let directives =
        std::env::var("CHAOS_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "info".into());
    tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Routes panics on a test's threads into that test's capture (message and location); panics
/// elsewhere go to the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let current = CURRENT.with(|c| c.borrow().clone());
            match current {
                Some(cap) => {
                    let payload = info
                        .payload()
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| info.payload().downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "Box<dyn Any>".into());
                    let location = info
                        .location()
                        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                        .unwrap_or_else(|| "unknown location".into());
                    let thread = std::thread::current();
                    let name = thread.name().unwrap_or("<unnamed>");
                    let msg = format!("panicked at {location} (thread '{name}'):\n{payload}");
                    cap.inner.panics.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
                }
                None => previous(info),
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_routed_to_the_current_capture() {
        let cap = Capture::new(false);
        let c2 = cap.clone();
        std::thread::spawn(move || {
            let _g = c2.install_on_this_thread();
            let _ = std::panic::catch_unwind(|| panic!("boom ]]> here"));
        })
        .join()
        .unwrap();
        let panics = cap.panics();
        assert_eq!(panics.len(), 1);
        assert!(panics[0].contains("boom ]]> here") && panics[0].contains("capture.rs:"), "{panics:?}");
    }

    #[test]
    fn captured_println_goes_to_the_current_capture() {
        use crate::{
            __chaos_eprint as eprint, __chaos_eprintln as eprintln, __chaos_print as print, __chaos_println as println,
        };
        let cap = Capture::new(false);
        let c2 = cap.clone();
        let x = 7;
        std::thread::spawn(move || {
            let _g = c2.install_on_this_thread();
            println!("from the body {x}");
            print!("no newline;");
            eprintln!();
            eprint!("err {}", 1);
        })
        .join()
        .unwrap();
        assert_eq!(cap.text(), "from the body 7\nno newline;\nerr 1");
    }

    #[test]
    fn captures_are_separate_per_thread() {
        let a = Capture::new(false);
        let b = Capture::new(false);
        let (a2, b2) = (a.clone(), b.clone());
        let t1 = std::thread::spawn(move || {
            let _g = a2.install_on_this_thread();
            tracing::warn!("from-a");
        });
        let t2 = std::thread::spawn(move || {
            let _g = b2.install_on_this_thread();
            tracing::warn!("from-b");
        });
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(a.text().contains("from-a") && !a.text().contains("from-b"));
        assert!(b.text().contains("from-b") && !b.text().contains("from-a"));
    }
}
