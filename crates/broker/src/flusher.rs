//! Group commit for partitions that fsync every append, without a blocking-pool hop per
//! request.
//!
//! A produce request that must wait for durability records the offset it needs and awaits a
//! watch of the durable offset. At most one flushing task runs per partition: started by the
//! first waiter that finds none, it fsyncs up to the largest offset any waiter has asked for,
//! publishes it, and goes on while waiters keep asking for more, so a steady stream of
//! requests shares fsyncs and costs no thread switch each. It ends when nobody waits.
//!
//! Invariant: while some waiter's offset is above the published durable offset, a flushing
//! task is running (`State::running`), and it looks at `State::wanted` under the same lock that
//! waiters raise it under, so no waiter is left without a flush.

use freshet_log::{Log, LogError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What a waiter learns about the log's durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    /// Every offset below this is on disk.
    Below(i64),
    /// A flush failed: the log is offline (see `docs/design/log.md`, "Disk errors") or closed.
    Failed,
}

#[derive(Debug, Default)]
struct State {
    /// The largest offset a waiter needs durable (exclusive end).
    wanted: i64,
    /// Whether a flushing task is running.
    running: bool,
}

struct Inner {
    log: Arc<Log>,
    state: Mutex<State>,
    durable: watch::Sender<Durable>,
}

/// One partition's flushing task and the watch its waiters await.
#[derive(Clone)]
pub struct Flusher {
    inner: Arc<Inner>,
}

impl Flusher {
    pub fn new(log: Arc<Log>) -> Flusher {
        let (durable, _) = watch::channel(Durable::Below(0));
        Flusher {
            inner: Arc::new(Inner {
                log,
                state: Mutex::new(State::default()),
                durable,
            }),
        }
    }

    /// Waits until every offset below `end` is durable. Errors: the log's own when it went
    /// offline or was closed meanwhile.
    pub async fn durable_below(&self, end: i64) -> Result<(), LogError> {
        let mut durable = self.inner.durable.subscribe();
        if matches!(*durable.borrow(), Durable::Below(offset) if offset >= end) {
            return Ok(());
        }
        {
            let mut state = self.lock();
            state.wanted = state.wanted.max(end);
            if !state.running {
                state.running = true;
                let inner = self.inner.clone();
                tokio::task::spawn_blocking(move || flush_while_wanted(&inner));
            }
        }
        let reached = durable
            .wait_for(|d| match d {
                Durable::Below(offset) => *offset >= end,
                Durable::Failed => true,
            })
            .await
            .map(|d| *d);
        match reached {
            Ok(Durable::Below(_)) => Ok(()),
            // The log says why (offline, closed); a dropped sender cannot happen while `self`
            // holds it, but would mean the same.
            Ok(Durable::Failed) | Err(_) => {
                self.inner.log.check_not_failed()?;
                Err(LogError::Closed)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The flushing task: fsyncs to the largest wanted offset until nothing more is wanted.
fn flush_while_wanted(inner: &Inner) {
    let mut done = 0;
    loop {
        let target = {
            let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.wanted <= done {
                state.running = false;
                return;
            }
            state.wanted
        };
        match inner.log.flush_until(target) {
            Ok(()) => {
                done = target;
                inner.durable.send_modify(|d| {
                    if let Durable::Below(offset) = d {
                        *offset = (*offset).max(target);
                    }
                });
            }
            Err(_) => {
                inner.durable.send_replace(Durable::Failed);
                inner
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .running = false;
                return;
            }
        }
    }
}
