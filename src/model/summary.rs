use std::fmt;

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Layer name.
    pub name: String,
    /// Keras class name.
    pub type_name: String,
    /// Output shape, Keras style: `(None, 20)`.
    pub output_shape: String,
    /// Parameter count.
    pub params: usize,
    /// Graph models: the tensors the layer is called on, Keras style
    /// (`enc[0][1]`: output 1 of the layer `enc`'s first call); `None` in a `Sequential`.
    pub connected_to: Option<String>,
}

/// A model summary, printed in the layout of Keras's `model.summary()`: 76 columns for a
/// `Sequential`, 108 with the "Connected to" column for a graph model (long cells wrap at
/// spaces, as Keras's do).
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let m = Sequential::<f32>::new(&[3, 1]).push(SimpleRnnConfig::new(20))?;
/// let s = m.summary();
/// assert_eq!(s.total_params(), 440);
/// assert!(s.to_string().contains("│ simple_rnn (SimpleRNN)          │ (None, 20)             │           440 │"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Model name.
    pub name: String,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
    /// Bytes per weight (4 for f32, 8 for f64), for the memory figures.
    pub bytes_per_param: usize,
}

impl Summary {
    /// Total parameter count.
    pub fn total_params(&self) -> usize {
        self.rows.iter().map(|r| r.params).sum()
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's `readable_memory_size`.
fn memory(bytes: f64) -> String {
    let mut v = bytes;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if v / 1024.0 < 1.0 {
            return format!("{v:.2} {unit}");
        }
        v /= 1024.0;
    }
    format!("{v:.2} PB")
}

/// `s` wrapped at spaces into lines of at most `w` characters (a longer word is cut).
fn wrap(s: &str, w: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        let word: Vec<char> = word.chars().collect();
        for piece in word.chunks(w.max(1)) {
            let piece: String = piece.iter().collect();
            let len = cur.chars().count();
            if len == 0 {
                cur = piece;
            } else if len + 1 + piece.chars().count() <= w {
                cur.push(' ');
                cur.push_str(&piece);
            } else {
                lines.push(std::mem::take(&mut cur));
                cur = piece;
            }
        }
    }
    lines.push(cur);
    lines
}

impl Summary {
    /// The graph model layout: four columns, cells wrapped.
    fn fmt_graph(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const W: [usize; 4] = [31, 27, 17, 28];
        let line = |l: &str, m: &str, r: &str, fill: &str| {
            let cols: Vec<String> = W.iter().map(|&w| fill.repeat(w)).collect();
            format!("{l}{}{r}", cols.join(m))
        };
        let row = |f: &mut fmt::Formatter<'_>, cells: [&str; 4], bar: &str| -> fmt::Result {
            let wrapped: Vec<Vec<String>> =
                cells.iter().zip(W).map(|(c, w)| wrap(c, w - 2)).collect();
            let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
            for i in 0..height {
                let mut out = String::from(bar);
                for (k, (lines, w)) in wrapped.iter().zip(W).enumerate() {
                    let text = lines.get(i).map_or("", String::as_str);
                    if k == 2 {
                        out.push_str(&format!(" {text:>width$} ", width = w - 2));
                    } else {
                        out.push_str(&format!(" {text:<width$} ", width = w - 2));
                    }
                    out.push_str(bar);
                }
                writeln!(f, "{out}")?;
            }
            Ok(())
        };
        writeln!(f, "Model: \"{}\"", self.name)?;
        writeln!(f, "{}", line("┏", "┳", "┓", "━"))?;
        row(
            f,
            ["Layer (type)", "Output Shape", "Param #", "Connected to"],
            "┃",
        )?;
        writeln!(f, "{}", line("┡", "╇", "┩", "━"))?;
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 {
                writeln!(f, "{}", line("├", "┼", "┤", "─"))?;
            }
            row(
                f,
                [
                    &format!("{} ({})", r.name, r.type_name),
                    &r.output_shape,
                    &thousands(r.params),
                    r.connected_to.as_deref().unwrap_or("-"),
                ],
                "│",
            )?;
        }
        writeln!(f, "{}", line("└", "┴", "┘", "─"))?;
        self.fmt_totals(f)
    }

    fn fmt_totals(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total_params();
        let mem = memory((total * self.bytes_per_param) as f64);
        writeln!(f, " Total params: {} ({mem})", thousands(total))?;
        writeln!(f, " Trainable params: {} ({mem})", thousands(total))?;
        write!(f, " Non-trainable params: 0 (0.00 B)")
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rows.iter().any(|r| r.connected_to.is_some()) {
            return self.fmt_graph(f);
        }
        const W: [usize; 3] = [33, 24, 15];
        let line = |l: &str, m: &str, r: &str, fill: &str| {
            format!(
                "{l}{}{m}{}{m}{}{r}",
                fill.repeat(W[0]),
                fill.repeat(W[1]),
                fill.repeat(W[2])
            )
        };
        let cell = |s: &str, w: usize| {
            let s: String = s.chars().take(w - 2).collect();
            format!(" {s:<width$} ", width = w - 2)
        };
        writeln!(f, "Model: \"{}\"", self.name)?;
        writeln!(f, "{}", line("┏", "┳", "┓", "━"))?;
        writeln!(
            f,
            "┃{}┃{}┃ {:>width$} ┃",
            cell("Layer (type)", W[0]),
            cell("Output Shape", W[1]),
            "Param #",
            width = W[2] - 2
        )?;
        writeln!(f, "{}", line("┡", "╇", "┩", "━"))?;
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 {
                writeln!(f, "{}", line("├", "┼", "┤", "─"))?;
            }
            writeln!(
                f,
                "│{}│{}│ {:>width$} │",
                cell(&format!("{} ({})", r.name, r.type_name), W[0]),
                cell(&r.output_shape, W[1]),
                thousands(r.params),
                width = W[2] - 2
            )?;
        }
        writeln!(f, "{}", line("└", "┴", "┘", "─"))?;
        self.fmt_totals(f)
    }
}
