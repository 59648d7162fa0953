//! Long work from a magic (a Spark statement, a Glue run, an EMR step, a transfer, a training
//! or tuning job): one live display, one poll loop, one way to run async work, and one
//! interrupt outcome, so that every engine behaves the same while the user waits.
//!
//! - [`LiveDisplay`]: a display with an id unique to this run (so a re-run never updates an
//!   old cell's output), updates throttled to a few a second, and a final state always shown.
//! - [`poll`] with a [`Backoff`]: asks, sleeps, asks again, sooner at first; the sleep wakes
//!   for an interrupt ([`sleep`]).
//! - [`block_on`]: runs a future on the process's one runtime; an interrupt abandons it.
//! - [`interrupted`]: the error every engine returns when the user interrupts, saying what was
//!   stopped and what was kept (ename `KeyboardInterrupt`, as IPython's).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::context::{MagicContext, MagicError, MimeBundle};

/// How often an interrupt is looked for while sleeping or waiting on a future.
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

/// The error for an interrupt: what was stopped, and what was kept.
pub fn interrupted(stopped: impl std::fmt::Display, kept: impl std::fmt::Display) -> MagicError {
    MagicError::Interrupted(format!("{stopped}; {kept}"))
}

/// Gives an interrupt from a generic wait ([`sleep`], [`poll`], [`block_on`]) the words of
/// the work that was waited for; other errors pass unchanged.
pub fn on_interrupt(
    e: MagicError,
    stopped: impl std::fmt::Display,
    kept: impl std::fmt::Display,
) -> MagicError {
    match e {
        MagicError::Interrupted(_) => interrupted(stopped, kept),
        other => other,
    }
}

fn waiting_interrupted() -> MagicError {
    interrupted("stopped waiting", "the work itself was not stopped")
}

/// A display id no other run in any kernel has: `{kind}-{name}-{pid}-{n}-{nanos}`.
pub fn unique_display_id(kind: &str, name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{kind}-{name}-{}-{}-{nanos:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One display that shows a run's progress in place.
pub struct LiveDisplay {
    id: String,
    shown: bool,
    last: Option<Instant>,
    every: Duration,
}

impl LiveDisplay {
    /// Updates at most every 250 ms.
    pub fn new(kind: &str, name: &str) -> LiveDisplay {
        LiveDisplay::with_interval(kind, name, Duration::from_millis(250))
    }

    pub fn with_interval(kind: &str, name: &str, every: Duration) -> LiveDisplay {
        LiveDisplay {
            id: unique_display_id(kind, name),
            shown: false,
            last: None,
            every,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether anything has been shown yet.
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    /// Shows `data` unless the last update was less than the interval ago; true when shown.
    pub fn update(&mut self, ctx: &mut dyn MagicContext, data: MimeBundle) -> bool {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return false;
        }
        self.put(ctx, data);
        true
    }

    /// Shows the final state, however soon after the last update.
    pub fn finish(&mut self, ctx: &mut dyn MagicContext, data: MimeBundle) {
        self.put(ctx, data);
    }

    fn put(&mut self, ctx: &mut dyn MagicContext, data: MimeBundle) {
        if self.shown {
            ctx.update_display(data, &self.id);
        } else {
            ctx.display(data, Some(&self.id));
            self.shown = true;
        }
        self.last = Some(Instant::now());
    }
}

/// Pauses between polls: `first`, then each `factor` times longer, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub factor: u32,
    pub max: Duration,
    next: Option<Duration>,
}

impl Backoff {
    pub fn new(first: Duration, factor: u32, max: Duration) -> Backoff {
        Backoff {
            first,
            factor: factor.max(1),
            max,
            next: None,
        }
    }

    /// The same pause every time.
    pub fn fixed(every: Duration) -> Backoff {
        Backoff::new(every, 1, every)
    }

    /// The next pause.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next.unwrap_or(self.first).min(self.max);
        self.next = Some((pause * self.factor).min(self.max));
        pause
    }
}

/// Sleeps for `pause`, waking every 50 ms to notice an interrupt.
pub fn sleep(ctx: &dyn MagicContext, pause: Duration) -> Result<(), MagicError> {
    let deadline = Instant::now() + pause;
    loop {
        if ctx.is_interrupted() {
            return Err(waiting_interrupted());
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(INTERRUPT_CHECK));
    }
}

/// What one look at the work found.
pub enum Poll<T> {
    Ready(T),
    Pending,
}

/// Calls `check` until it is ready, sleeping by `backoff` between calls. An interrupt (before
/// a call, or during a sleep) ends the wait with [`MagicError::Interrupted`]; give it the
/// work's words with [`on_interrupt`].
pub fn poll<T>(
    ctx: &mut dyn MagicContext,
    mut backoff: Backoff,
    mut check: impl FnMut(&mut dyn MagicContext) -> Result<Poll<T>, MagicError>,
) -> Result<T, MagicError> {
    loop {
        if ctx.is_interrupted() {
            return Err(waiting_interrupted());
        }
        if let Poll::Ready(value) = check(ctx)? {
            return Ok(value);
        }
        sleep(ctx, backoff.next_pause())?;
    }
}

/// The process's one async runtime for magics (SDK calls, HTTP clients). It lives as long as
/// the process, so nothing has to shut it down from inside another runtime.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("magic-io")
            .enable_all()
            .build()
            .expect("the magics' runtime starts")
    })
}

/// Runs `fut` to completion on [`runtime`]; an interrupt abandons it (the future is dropped).
pub fn block_on<T>(ctx: &dyn MagicContext, fut: impl Future<Output = T>) -> Result<T, MagicError> {
    runtime().block_on(async {
        let interrupt = async {
            loop {
                tokio::time::sleep(INTERRUPT_CHECK).await;
                if ctx.is_interrupted() {
                    return;
                }
            }
        };
        tokio::select! {
            out = fut => Ok(out),
            _ = interrupt => Err(waiting_interrupted()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::FrameStore;
    use std::cell::Cell;

    /// Records displays; interrupted once `interrupt_after` checks have been made.
    #[derive(Default)]
    struct Probe {
        frames: FrameStore,
        displays: Vec<(String, String)>,
        updates: Vec<(String, String)>,
        checks: Cell<u32>,
        interrupt_after: Option<u32>,
        interrupt_at: Option<Instant>,
    }

    fn text(d: &MimeBundle) -> String {
        d.0["text/plain"].as_str().unwrap_or_default().to_owned()
    }

    impl MagicContext for Probe {
        fn stdout(&mut self, _: &str) {}
        fn stderr(&mut self, _: &str) {}
        fn display(&mut self, data: MimeBundle, id: Option<&str>) {
            self.displays
                .push((id.unwrap_or_default().into(), text(&data)));
        }
        fn update_display(&mut self, data: MimeBundle, id: &str) {
            self.updates.push((id.into(), text(&data)));
        }
        fn clear_output(&mut self, _: bool) {}
        fn is_interrupted(&self) -> bool {
            self.checks.set(self.checks.get() + 1);
            self.interrupt_after.is_some_and(|n| self.checks.get() > n)
                || self.interrupt_at.is_some_and(|t| Instant::now() >= t)
        }
        fn input(&mut self, _: &str, _: bool) -> Result<String, MagicError> {
            Err(MagicError::StdinNotAllowed)
        }
        fn frames(&mut self) -> &mut FrameStore {
            &mut self.frames
        }
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(10), 2, Duration::from_millis(50));
        let pauses: Vec<u64> = (0..5).map(|_| b.next_pause().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 50, 50]);
        let mut f = Backoff::fixed(Duration::from_secs(2));
        assert_eq!(
            (f.next_pause(), f.next_pause()),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
    }

    #[test]
    fn poll_returns_when_ready_and_backs_off() {
        let mut ctx = Probe::default();
        let mut calls = 0;
        let started = Instant::now();
        let got = poll(
            &mut ctx,
            Backoff::new(Duration::from_millis(5), 2, Duration::from_millis(20)),
            |_| {
                calls += 1;
                Ok(if calls == 4 {
                    Poll::Ready(calls)
                } else {
                    Poll::Pending
                })
            },
        )
        .unwrap();
        assert_eq!(got, 4);
        // 5 + 10 + 20 ms of sleeps between the four calls.
        assert!(
            started.elapsed() >= Duration::from_millis(35),
            "{:?}",
            started.elapsed()
        );
        // A failure of the work ends the wait with that failure.
        let err = poll(&mut ctx, Backoff::fixed(Duration::ZERO), |_| {
            Err::<Poll<()>, _>(MagicError::Failed("gone".into()))
        });
        assert_eq!(err, Err(MagicError::Failed("gone".into())));
    }

    #[test]
    fn an_interrupt_during_a_long_sleep_ends_it_at_once() {
        let mut ctx = Probe {
            interrupt_at: Some(Instant::now() + Duration::from_millis(100)),
            ..Probe::default()
        };
        let started = Instant::now();
        let err = poll(&mut ctx, Backoff::fixed(Duration::from_secs(30)), |_| {
            Ok(Poll::<()>::Pending)
        })
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.ename(), "KeyboardInterrupt");
        // The engine gives it its own words: what was stopped, what was kept.
        let e = on_interrupt(err, "stopped waiting for step s-1", "it keeps running");
        assert_eq!(
            e.to_string(),
            "interrupted: stopped waiting for step s-1; it keeps running"
        );
        assert_eq!(
            on_interrupt(MagicError::Failed("x".into()), "a", "b"),
            MagicError::Failed("x".into())
        );
    }

    #[test]
    fn block_on_is_abandoned_on_interrupt() {
        let ctx = Probe::default();
        assert_eq!(block_on(&ctx, async { 7 }), Ok(7));
        let ctx = Probe {
            interrupt_after: Some(2),
            ..Probe::default()
        };
        let started = Instant::now();
        let never = async { tokio::time::sleep(Duration::from_secs(30)).await };
        let err = block_on(&ctx, never).unwrap_err();
        assert!(matches!(err, MagicError::Interrupted(_)));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn display_ids_are_unique_per_run_and_updates_throttled() {
        let mut ctx = Probe::default();
        // The same job re-run (`--replace`) gets a new display, never the old one's.
        let mut first = LiveDisplay::with_interval("train", "job", Duration::from_secs(60));
        let second = LiveDisplay::with_interval("train", "job", Duration::from_secs(60));
        assert_ne!(first.id(), second.id());
        assert!(first.id().starts_with("train-job-"));
        assert!(first.update(&mut ctx, MimeBundle::text("1")));
        assert!(!first.update(&mut ctx, MimeBundle::text("2")), "throttled");
        first.finish(&mut ctx, MimeBundle::text("done"));
        assert_eq!(ctx.displays, [(first.id().to_owned(), "1".to_owned())]);
        assert_eq!(ctx.updates, [(first.id().to_owned(), "done".to_owned())]);
    }
}
