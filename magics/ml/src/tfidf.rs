//! Free text as features: TF-IDF over a vocabulary learnt from the training rows, as
//! scikit-learn's `TfidfVectorizer` computes it by default (lower-cased words of two or more
//! letters or digits, smoothed idf `ln((1 + n) / (1 + df)) + 1`, each row scaled to unit
//! length). A column is free text, not categories, when its values average at least
//! [`MIN_WORDS`] words, the rule Autopilot's analysis uses.

use std::collections::HashMap;

/// Values averaging this many words are free text.
pub const MIN_WORDS: f64 = 3.0;
/// The most frequent terms kept as features (those in at least two rows).
pub const MAX_TERMS: usize = 200;

/// The words of `text`: runs of two or more letters or digits, lower-cased.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
}

/// Whether the present values read as free text.
pub fn is_text<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let (mut rows, mut words) = (0usize, 0usize);
    for v in values {
        rows += 1;
        words += v.split_whitespace().count();
    }
    rows > 0 && words as f64 / rows as f64 >= MIN_WORDS
}

/// The vocabulary (most frequent by document frequency, then alphabetical; terms in one row
/// only are left out) and each term's idf, from the training rows' texts.
pub fn learn<'a>(texts: impl Iterator<Item = &'a str>) -> (Vec<String>, Vec<f64>) {
    let mut df: HashMap<String, usize> = HashMap::new();
    let mut n = 0usize;
    for text in texts {
        n += 1;
        let mut seen: Vec<String> = tokens(text).collect();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            *df.entry(t).or_default() += 1;
        }
    }
    let mut terms: Vec<(String, usize)> = df.into_iter().filter(|(_, d)| *d >= 2).collect();
    terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    terms.truncate(MAX_TERMS);
    let idf = terms
        .iter()
        .map(|(_, d)| ((1 + n) as f64 / (1 + d) as f64).ln() + 1.0)
        .collect();
    (terms.into_iter().map(|(t, _)| t).collect(), idf)
}

/// Looks terms up while a column is encoded.
pub struct Encoder<'a> {
    index: HashMap<&'a str, usize>,
    idf: &'a [f64],
}

impl<'a> Encoder<'a> {
    pub fn new(vocabulary: &'a [String], idf: &'a [f64]) -> Encoder<'a> {
        let index = vocabulary
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        Encoder { index, idf }
    }

    /// Writes the row's TF-IDF into `out` (one slot a term, all zero for no known term).
    pub fn encode(&self, text: &str, out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = 0.0);
        for t in tokens(text) {
            if let Some(&i) = self.index.get(t.as_str()) {
                out[i] += self.idf[i];
            }
        }
        let norm = out.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_short_ones_dropped() {
        let t: Vec<String> = tokens("A cat, the CAT's 2 toys!").collect();
        assert_eq!(t, vec!["cat", "the", "cat", "toys"]);
        assert!(is_text(["a long free text", "more words here"].into_iter()));
        assert!(!is_text(["red", "blue green"].into_iter()));
        assert!(!is_text(std::iter::empty()));
    }

    #[test]
    fn idf_and_unit_rows_as_scikit_learn_computes_them() {
        let rows = [
            "good service good food",
            "bad food",
            "good value",
            "unique words",
        ];
        let (vocabulary, idf) = learn(rows.iter().copied());
        // `food` in 2 rows, `good` in 2: ties alphabetical; one-row terms left out.
        assert_eq!(vocabulary, vec!["food", "good"]);
        let want = (5.0f64 / 3.0).ln() + 1.0;
        assert!((idf[0] - want).abs() < 1e-12 && (idf[1] - want).abs() < 1e-12);
        let encoder = Encoder::new(&vocabulary, &idf);
        let mut out = [0.0; 2];
        encoder.encode("good service good food", &mut out);
        // tf 1 and 2 times the same idf, scaled to unit length: (1, 2) / √5.
        assert!((out[0] - 1.0 / 5f64.sqrt()).abs() < 1e-12);
        assert!((out[1] - 2.0 / 5f64.sqrt()).abs() < 1e-12);
        encoder.encode("nothing known", &mut out);
        assert_eq!(out, [0.0, 0.0]);
    }
}
