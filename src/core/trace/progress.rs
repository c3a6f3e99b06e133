//! The live line `record` and `verify` draw on a terminal: processes,
//! syscalls and paths so far. Cheap per event: a counter, and a redraw at
//! most every 100 ms.

use std::time::{Duration, Instant};

pub struct Progress {
    bar: indicatif::ProgressBar,
    events: u64,
    last_draw: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            events: 0,
            last_draw: Instant::now(),
        }
    }

    /// Counts one event; `line` makes the text when a redraw is due.
    pub fn tick(&mut self, line: impl FnOnce() -> String) {
        self.events += 1;
        if self.events % 64 == 0 && self.last_draw.elapsed() >= Duration::from_millis(100) {
            self.draw(line());
            self.last_draw = Instant::now();
        }
    }

    pub fn draw(&self, line: String) {
        self.bar.set_message(line);
    }

    /// Runs `f` with the line hidden (jailtrace stopping itself on ^Z).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
