//! Standardization: (x − mean) / std per column, with statistics of the training rows.

/// Per-column mean and standard deviation of a row-major `[rows, cols]` matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalizer {
    /// Mean and population standard deviation (ddof 0, as scikit-learn's `StandardScaler`),
    /// accumulated in f64 with two passes. A constant column (std < 1e-12) gets std 1, so it
    /// maps to 0 instead of dividing by zero. No rows gives the identity.
    pub fn fit(x: &[f32], rows: usize, cols: usize) -> Normalizer {
        if rows == 0 || cols == 0 {
            return Normalizer::identity(cols);
        }
        let x = &x[..rows * cols];
        let mut sum = vec![0f64; cols];
        for row in x.chunks_exact(cols) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / rows as f64).collect();
        let mut sq = vec![0f64; cols];
        for row in x.chunks_exact(cols) {
            for ((q, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
                let d = v as f64 - m;
                *q += d * d;
            }
        }
        let std = sq
            .iter()
            .map(|q| {
                let s = (q / rows as f64).sqrt();
                if s < 1e-12 { 1.0 } else { s as f32 }
            })
            .collect();
        Normalizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Mean 0, std 1: `apply` and `invert` leave values as they are.
    pub fn identity(cols: usize) -> Normalizer {
        Normalizer {
            mean: vec![0.0; cols],
            std: vec![1.0; cols],
        }
    }

    pub fn cols(&self) -> usize {
        self.mean.len()
    }

    /// `(x − mean) / std` in place, `x` row-major `[rows, cols]`.
    pub fn apply(&self, x: &mut [f32]) {
        if self.cols() == 0 {
            return;
        }
        for row in x.chunks_exact_mut(self.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// `x · std + mean` in place: the inverse of `apply`.
    pub fn invert(&self, x: &mut [f32]) {
        if self.cols() == 0 {
            return;
        }
        for row in x.chunks_exact_mut(self.cols()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * s + m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_is_population_std() {
        // Column 0: 2, 4, 4, 4, 5, 5, 7, 9 → mean 5, population std 2.
        let col0 = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let x: Vec<f32> = col0.iter().flat_map(|&a| [a, 3.25]).collect();
        let n = Normalizer::fit(&x, 8, 2);
        assert_eq!(n.mean, [5.0, 3.25]);
        assert_eq!(n.std, [2.0, 1.0]);
        let mut y = x.clone();
        n.apply(&mut y);
        assert_eq!(&y[..4], [-1.5, 0.0, -0.5, 0.0]);
        n.invert(&mut y);
        assert_eq!(y, x);
    }
}
