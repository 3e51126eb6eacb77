//! The terminal side of training: an indicatif progress bar with return and steps/s.

use indicatif::{ProgressBar, ProgressStyle};

use crate::train::{Progress, Reporter};

/// Shows progress on stderr.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar over `updates` updates (hidden when `visible` is false).
    pub fn new(updates: u64, visible: bool) -> Self {
        let bar = if visible {
            ProgressBar::new(updates)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} updates  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self { bar }
    }

    /// Ends the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}

impl Reporter for Bar {
    fn update(&mut self, p: &Progress) {
        self.bar.set_position(p.update);
        let fmt = |x: f64| {
            if x.is_finite() {
                format!("{x:.2}")
            } else {
                "-".into()
            }
        };
        self.bar.set_message(format!(
            "step {}  return {}  eval {}  {:.0} steps/s",
            p.global_step,
            fmt(p.episodic_return),
            fmt(p.eval_return),
            p.sps
        ));
    }

    fn note(&mut self, msg: &str) {
        if self.bar.is_hidden() {
            tracing::info!("{msg}");
        } else {
            self.bar.println(msg);
        }
    }
}
