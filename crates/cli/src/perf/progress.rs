//! Progress while a perf run goes: a bar when stderr is a terminal, otherwise one line on
//! stderr every report interval (so logs of CI and scripts show it too).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    label: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
    /// `None`: no progress lines.
    interval: Option<Duration>,
    window_start: Instant,
    window_done: u64,
}

impl Progress {
    /// `label` starts each progress line ("produce", "consume", "e2e").
    pub fn new(label: &'static str, total: u64, interval_ms: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} records, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label);
            bar
        });
        Progress {
            label,
            total,
            bar,
            interval: (interval_ms > 0).then(|| Duration::from_millis(interval_ms)),
            window_start: Instant::now(),
            window_done: 0,
        }
    }

    /// `done` records so far. On a terminal this moves the bar; otherwise, once per
    /// interval, prints a line with the rate since the last line and `detail()` (which
    /// may reset the caller's per-line figures).
    pub fn tick(&mut self, done: u64, detail: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let window = now.duration_since(self.window_start);
        if window < interval {
            return;
        }
        let rate = super::per_second(
            done.saturating_sub(self.window_done) as f64,
            window.as_secs_f64(),
        );
        eprintln!(
            "perf {}: {done}/{} records, {rate:.1} records/s over {:.1} s{}",
            self.label,
            self.total,
            window.as_secs_f64(),
            detail()
        );
        self.window_start = now;
        self.window_done = done;
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
