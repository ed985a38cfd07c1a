//! A background thread that runs [`Log::run_maintenance`] periodically, for callers that do
//! not drive it from their own scheduler. A plain thread (not a tokio task) because the work
//! is blocking disk I/O and the log does not depend on a runtime.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::LogError;
use crate::log::Log;

#[derive(Debug, Default)]
struct Shared {
    stop: bool,
    last_error: Option<String>,
    runs: u64,
}

/// Runs maintenance every `interval_ms` until dropped (drop stops and joins the thread).
#[derive(Debug)]
pub struct MaintenanceTask {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl MaintenanceTask {
    pub fn spawn(log: Arc<Log>, interval_ms: u64) -> MaintenanceTask {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let thread_shared = shared.clone();
        let thread = std::thread::spawn(move || run(&log, interval_ms, &thread_shared));
        MaintenanceTask {
            shared,
            thread: Some(thread),
        }
    }

    /// The last error maintenance hit (the broker reports it as a storage error).
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// How many maintenance passes completed.
    pub fn runs(&self) -> u64 {
        self.lock().runs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn run(log: &Log, interval_ms: u64, shared: &(Mutex<Shared>, Condvar)) {
    let (lock, wake) = shared;
    loop {
        let result = log.run_maintenance(crate::log::Clock::now_ms(log.clock.as_ref()));
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        s.runs += 1;
        match result {
            Ok(_) => {}
            Err(LogError::Closed) => return,
            Err(e) => s.last_error = Some(e.to_string()),
        }
        let (s, _) = wake
            .wait_timeout_while(s, Duration::from_millis(interval_ms), |s| !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        if s.stop {
            return;
        }
    }
}

impl Drop for MaintenanceTask {
    fn drop(&mut self) {
        self.lock().stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
