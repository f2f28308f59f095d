//! The epoch's running means and Keras's log lines.

use super::callbacks::Logs;
use super::loss::Metric;

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

    pub(crate) fn logs(&self, metrics: &[Metric]) -> Logs {
        let mut logs = Logs::new();
        logs.insert("loss".into(), self.loss_sum / self.seen);
        for (m, (s, c)) in metrics.iter().zip(&self.metrics) {
            logs.insert(m.key().into(), s / c.max(1.0));
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

pub(crate) fn epoch_line(verbose: u8, steps: usize, secs: f64, logs: &Logs) -> String {
    let per_step = secs / steps.max(1) as f64;
    let per = if per_step >= 1.0 {
        format!("{per_step:.0}s/step")
    } else if per_step >= 1e-3 {
        format!("{:.0}ms/step", per_step * 1e3)
    } else {
        format!("{:.0}us/step", per_step * 1e6)
    };
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

/// Whether every element is finite (a flat, vectorisable pass for contiguous arrays).
#[cfg(test)]
mod tests {
    use super::keras_number;

    #[test]
    fn numbers_print_like_keras() {
        assert_eq!(keras_number(9.31234), "9.3123");
        assert_eq!(keras_number(0.00012345), "1.2345e-04");
        assert_eq!(keras_number(0.0), "0.0000");
    }
}
