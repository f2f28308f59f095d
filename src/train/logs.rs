//! The epoch's running means and Keras's log lines.

use super::callbacks::Logs;
use super::objective::MetricFunction;
use crate::float::Float;

/// Keras's running means over an epoch: the loss weighted by batch size, each metric by
/// its number of entries.
pub(crate) struct Running {
    loss_sum: f64,
    seen: f64,
    metrics: Vec<(f64, f64)>,
}

impl Running {
    pub(crate) fn new(metrics: usize) -> Self {
        Running {
            loss_sum: 0.0,
            seen: 0.0,
            metrics: vec![(0.0, 0.0); metrics],
        }
    }

    pub(crate) fn add(&mut self, loss: f64, batch: usize, metrics: Vec<(f64, f64)>) {
        self.loss_sum += loss * batch as f64;
        self.seen += batch as f64;
        for (acc, m) in self.metrics.iter_mut().zip(metrics) {
            acc.0 += m.0;
            acc.1 += m.1;
        }
    }

    pub(crate) fn logs<F: Float>(&self, metrics: &[Box<dyn MetricFunction<F>>]) -> Logs {
        let mut logs = Logs::new();
        logs.insert("loss".into(), self.loss_sum / self.seen);
        for (m, (s, c)) in metrics.iter().zip(&self.metrics) {
            logs.insert(m.name().into(), s / c.max(1.0));
        }
        logs
    }
}

/// Keras's number format in logs: `{:.4f}`, or `{:.4e}` for |v| ≤ 1e-3.
pub(crate) fn keras_number(v: f64) -> String {
    if v.abs() > 1e-3 || v == 0.0 {
        return format!("{v:.4}");
    }
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Keras's time per step: `2s/step`, `35ms/step`, `120us/step`.
fn per_step(secs: f64, steps: usize) -> String {
    let per_step = secs / steps.max(1) as f64;
    if per_step >= 1.0 {
        format!("{per_step:.0}s/step")
    } else if per_step >= 1e-3 {
        format!("{:.0}ms/step", per_step * 1e3)
    } else {
        format!("{:.0}us/step", per_step * 1e6)
    }
}

/// Keras's live bar during an epoch (`verbose=1` on a terminal): `12/32 ━━━━━━━╺─────────
/// 1s 35ms/step - loss: 0.4012`, the time being the estimate of what remains.
pub(crate) fn progress_line(step: usize, steps: usize, secs: f64, logs: &Logs) -> String {
    let done = step * 20 / steps.max(1);
    let bar: String = (0..20)
        .map(|i| match i.cmp(&done) {
            std::cmp::Ordering::Less => '━',
            std::cmp::Ordering::Equal => '╺',
            std::cmp::Ordering::Greater => '─',
        })
        .collect();
    let eta = secs / step.max(1) as f64 * steps.saturating_sub(step) as f64;
    let parts: Vec<String> = logs
        .iter()
        .map(|(k, v)| format!("{k}: {}", keras_number(*v)))
        .collect();
    format!(
        "{step}/{steps} {bar} {eta:.0}s {} - {}",
        per_step(secs, step),
        parts.join(" - ")
    )
}

pub(crate) fn epoch_line(verbose: u8, steps: usize, secs: f64, logs: &Logs) -> String {
    let per = per_step(secs, steps);
    // Keras prints the training keys first, then the val_ keys.
    let mut parts: Vec<String> = logs
        .iter()
        .filter(|(k, _)| !k.starts_with("val_"))
        .map(|(k, v)| format!("{k}: {}", keras_number(*v)))
        .collect();
    parts.extend(
        logs.iter()
            .filter(|(k, _)| k.starts_with("val_"))
            .map(|(k, v)| format!("{k}: {}", keras_number(*v))),
    );
    let head = if verbose == 1 {
        format!("{steps}/{steps} {} {:.0}s {per}", "━".repeat(20), secs)
    } else {
        format!("{steps}/{steps} - {:.0}s - {per}", secs)
    };
    format!("{head} - {}", parts.join(" - "))
}

#[cfg(test)]
mod tests {
    use super::{Logs, keras_number, progress_line};

    #[test]
    fn numbers_print_like_keras() {
        assert_eq!(keras_number(9.31234), "9.3123");
        assert_eq!(keras_number(0.00012345), "1.2345e-04");
        assert_eq!(keras_number(0.0), "0.0000");
    }

    #[test]
    fn the_live_bar_shows_progress_eta_and_running_logs() {
        let logs: Logs = [("loss".to_string(), 0.40123)].into_iter().collect();
        // 8 of 32 steps in 2 s: 0.25 s/step, 6 s left.
        assert_eq!(
            progress_line(8, 32, 2.0, &logs),
            "8/32 ━━━━━╺────────────── 6s 250ms/step - loss: 0.4012"
        );
    }
}
