//! Evaluation a student can read: the confusion matrix and per-class scores for classes, r² for
//! regression, computed as scikit-learn's `confusion_matrix`, `precision_recall_fscore_support`,
//! `f1_score(average="macro")` and `r2_score` compute them.

use serde_json::{Map, Value, json};

/// Counts of (true class, predicted class) and the scores derived from them.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassReport {
    pub classes: Vec<String>,
    /// `confusion[t][p]`: rows whose true class is `t` and predicted class `p`.
    pub confusion: Vec<Vec<u64>>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    /// Rows of each true class.
    pub support: Vec<u64>,
    /// Mean F1 over the classes that occur as a truth or a prediction (sklearn's default
    /// label set); a class the model knows but that occurs nowhere here does not count.
    pub macro_f1: f64,
}

impl ClassReport {
    /// From class ids per row; ids outside `classes` are ignored.
    pub fn new(classes: &[String], truth: &[usize], pred: &[usize]) -> ClassReport {
        let k = classes.len();
        let mut confusion = vec![vec![0u64; k]; k];
        for (&t, &p) in truth.iter().zip(pred) {
            if t < k && p < k {
                confusion[t][p] += 1;
            }
        }
        let support: Vec<u64> = confusion.iter().map(|r| r.iter().sum()).collect();
        let predicted: Vec<u64> = (0..k)
            .map(|p| confusion.iter().map(|r| r[p]).sum())
            .collect();
        // 0/0 is 0, sklearn's zero_division default (with its warning left out).
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision: Vec<f64> = (0..k)
            .map(|c| ratio(confusion[c][c], predicted[c]))
            .collect();
        let recall: Vec<f64> = (0..k).map(|c| ratio(confusion[c][c], support[c])).collect();
        let f1: Vec<f64> = (0..k)
            .map(|c| {
                let (p, r) = (precision[c], recall[c]);
                if p + r == 0.0 {
                    0.0
                } else {
                    2.0 * p * r / (p + r)
                }
            })
            .collect();
        let present: Vec<usize> = (0..k).filter(|&c| support[c] + predicted[c] > 0).collect();
        let macro_f1 = if present.is_empty() {
            0.0
        } else {
            present.iter().map(|&c| f1[c]).sum::<f64>() / present.len() as f64
        };
        ClassReport {
            classes: classes.to_vec(),
            confusion,
            precision,
            recall,
            f1,
            support,
            macro_f1,
        }
    }

    /// Adds `confusion`, `precision`, `recall`, `f1`, `support` (arrays in class order) and
    /// `macro_f1` to an `eval --json` object.
    pub fn add_json(&self, obj: &mut Map<String, Value>) {
        obj.insert("confusion".into(), json!(self.confusion));
        obj.insert("precision".into(), json!(self.precision));
        obj.insert("recall".into(), json!(self.recall));
        obj.insert("f1".into(), json!(self.f1));
        obj.insert("support".into(), json!(self.support));
        obj.insert("macro_f1".into(), json!(self.macro_f1));
    }

    /// The confusion matrix (rows true, columns predicted) and a per-class table, as text.
    pub fn render(&self) -> String {
        let labels: Vec<String> = self.classes.iter().map(|c| clip(c, 12)).collect();
        let w0 = labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1)
            .max(10);
        let cells = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1);
        let wc = labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1)
            .max(cells);
        let mut s = format!(
            "confusion matrix (rows: true class, columns: predicted)\n{:>w0$}",
            ""
        );
        for l in &labels {
            s += &format!(" {l:>wc$}");
        }
        s.push('\n');
        for (l, row) in labels.iter().zip(&self.confusion) {
            s += &format!("{l:>w0$}");
            for v in row {
                s += &format!(" {v:>wc$}");
            }
            s.push('\n');
        }
        s += &format!(
            "\n{:>w0$} {:>9} {:>9} {:>9} {:>9}\n",
            "class", "precision", "recall", "f1", "support"
        );
        for (c, l) in labels.iter().enumerate() {
            s += &format!(
                "{l:>w0$} {:>9.4} {:>9.4} {:>9.4} {:>9}\n",
                self.precision[c], self.recall[c], self.f1[c], self.support[c]
            );
        }
        s += &format!("{:>w0$} {:>29.4}\n", "macro f1", self.macro_f1);
        s
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

/// r² of row-major `pred` against `truth`, both `[rows, targets]`: per target
/// 1 − SS_res/SS_tot, averaged over targets (sklearn's `uniform_average`). A constant target
/// scores 1 when predicted exactly and 0 otherwise (sklearn's `force_finite`).
pub fn r2(truth: &[f32], pred: &[f32], targets: usize) -> f64 {
    if targets == 0 || truth.is_empty() {
        return f64::NAN;
    }
    let rows = truth.len() / targets;
    let per: Vec<f64> = (0..targets)
        .map(|j| {
            let col = |v: &[f32], i: usize| v[i * targets + j] as f64;
            let mean = (0..rows).map(|i| col(truth, i)).sum::<f64>() / rows as f64;
            let tot: f64 = (0..rows).map(|i| (col(truth, i) - mean).powi(2)).sum();
            let res: f64 = (0..rows)
                .map(|i| (col(truth, i) - col(pred, i)).powi(2))
                .sum();
            match (tot == 0.0, res == 0.0) {
                (true, true) => 1.0,
                (true, false) => 0.0,
                _ => 1.0 - res / tot,
            }
        })
        .collect();
    per.iter().sum::<f64>() / targets as f64
}

/// The class with the largest output in each row of row-major `out[rows, k]` (first on ties).
pub fn argmax_rows(out: &[f32], k: usize) -> Vec<usize> {
    out.chunks(k.max(1))
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn class_report_matches_sklearn() {
        // y_true = [0,0,0,1,1,2,2,2,2], y_pred = [0,1,0,1,2,2,2,0,2]; sklearn gives
        // confusion [[2,1,0],[0,1,1],[1,0,3]], precision [2/3, 1/2, 3/4], recall [2/3, 1/2, 3/4],
        // f1 the same, macro f1 (2/3 + 1/2 + 3/4)/3.
        let t = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        let p = [0, 1, 0, 1, 2, 2, 2, 0, 2];
        let r = ClassReport::new(&names(&["a", "b", "c"]), &t, &p);
        assert_eq!(r.confusion, [[2, 1, 0], [0, 1, 1], [1, 0, 3]]);
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(
            close(&r.precision, &[2.0 / 3.0, 0.5, 0.75]),
            "{:?}",
            r.precision
        );
        assert!(close(&r.recall, &[2.0 / 3.0, 0.5, 0.75]), "{:?}", r.recall);
        assert_eq!(r.support, [3, 2, 4]);
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.5 + 0.75) / 3.0).abs() < 1e-12);
        let text = r.render();
        assert!(text.contains("rows: true class"), "{text}");
        assert!(text.contains("macro f1"), "{text}");
    }

    #[test]
    fn unpredicted_and_absent_classes() {
        // Class 1 is never predicted: precision 0 (0/0), f1 0. Class 2 occurs nowhere: left
        // out of the macro mean, as sklearn's label set leaves it out.
        let t = [0, 0, 1, 1];
        let p = [0, 0, 0, 0];
        let r = ClassReport::new(&names(&["x", "y", "z"]), &t, &p);
        assert_eq!(r.precision[1], 0.0);
        assert_eq!(r.f1[1], 0.0);
        assert!((r.precision[0] - 0.5).abs() < 1e-12);
        // f1[0] = 2·0.5·1/(1.5) = 2/3; macro over {0,1} = 1/3.
        assert!((r.macro_f1 - 1.0 / 3.0).abs() < 1e-12, "{}", r.macro_f1);
        let mut obj = Map::new();
        r.add_json(&mut obj);
        assert_eq!(obj["support"], json!([2, 2, 0]));
        assert_eq!(obj["confusion"], json!([[2, 0, 0], [2, 0, 0], [0, 0, 0]]));
    }

    #[test]
    fn r2_like_sklearn() {
        // sklearn.metrics.r2_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]) = 0.9486081370449679
        let v = r2(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0], 1);
        assert!((v - 0.948_608_137_044_967_9).abs() < 1e-9, "{v}");
        // Two targets interleaved row-major: the mean of the per-target scores.
        // r2_score([[0.5, 1], [-1, 1], [7, -6]], [[0, 2], [-1, 2], [8, -5]]) = 0.9368005266622779
        let v = r2(
            &[0.5, 1.0, -1.0, 1.0, 7.0, -6.0],
            &[0.0, 2.0, -1.0, 2.0, 8.0, -5.0],
            2,
        );
        assert!((v - 0.936_800_526_662_277_9).abs() < 1e-9, "{v}");
        assert_eq!(r2(&[2.0, 2.0], &[2.0, 2.0], 1), 1.0);
        assert_eq!(r2(&[2.0, 2.0], &[2.0, 3.0], 1), 0.0);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_outputs() {
        assert_eq!(argmax_rows(&[0.1, 0.7, 0.2, 0.5, 0.5, -1.0], 3), [1, 0]);
    }
}
