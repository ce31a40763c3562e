//! The pipeline as plain data: stage specs from Python, the DAG over them, and `--explain`'s
//! differences. No pyo3, no clap, no RocksDB here.

pub(crate) mod dag;
pub(crate) mod explain;
pub(crate) mod spec;

pub(crate) use dag::{Dag, DagError};
pub(crate) use spec::{OutKind, OutSpec, PipelineSpec, StageSpec};

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_close_name_only() {
        assert_eq!(
            did_you_mean("trian", ["train", "prep"]).as_deref(),
            Some("train")
        );
        assert_eq!(did_you_mean("zzzzzz", ["train", "prep"]), None);
    }
}
