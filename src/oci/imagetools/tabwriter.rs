//! Go's `text/tabwriter` with minwidth 0, padding 1, pad character space and no flags:
//! tab-terminated cells are aligned in column blocks (consecutive lines that have a cell
//! in that column); the text after a line's last tab is not part of any column.

/// Collects text and aligns it on [`TabWriter::flush`].
#[derive(Debug, Default)]
pub struct TabWriter {
    buf: String,
    out: String,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

impl TabWriter {
    pub fn new() -> TabWriter {
        TabWriter::default()
    }

    pub fn write(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Formats everything written since the last flush.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.buf);
        let ends_nl = text.ends_with('\n');
        let body = if ends_nl {
            &text[..text.len() - 1]
        } else {
            &text[..]
        };
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut widths = Vec::new();
        let mut out = String::new();
        format(&lines, 0, lines.len(), &mut widths, &mut out);
        // every line but the last got a newline; the last only if the input had one
        if ends_nl {
            out.push('\n');
        }
        self.out.push_str(&out);
    }

    /// Flushes and returns everything written.
    pub fn finish(mut self) -> String {
        self.flush();
        self.out
    }
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() && j < widths.len() {
                for _ in width(cell)..widths[j] {
                    out.push(' ');
                }
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

fn format(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column >= lines[this].len() - 1 {
            this += 1;
            continue;
        }
        // a cell in this column: print the lines before the block, then the block
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut w = 0;
        while this < line1 && column < lines[this].len() - 1 {
            w = w.max(width(lines[this][column]) + 1);
            this += 1;
        }
        widths.push(w);
        format(lines, line0, this, widths, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_blocks_like_go() {
        let mut w = TabWriter::new();
        w.write("Name:\tx\nMediaType:\ty\n\t\nManifests:\t\n");
        w.flush();
        w.write("  Name:\ta\n");
        let s = w.finish();
        assert_eq!(
            s,
            "Name:      x\nMediaType: y\n           \nManifests: \n  Name: a\n"
        );
        // a line without tabs ends the block
        let mut w = TabWriter::new();
        w.write("a:\t1\nplain\nlonger:\t2\n");
        assert_eq!(w.finish(), "a: 1\nplain\nlonger: 2\n");
    }
}
