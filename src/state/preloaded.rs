//! Memo entries read in one pass over a key range (see `DigestMemo::preload`): a no-op over a
//! directory of 100k files costs one scan of its contiguous key range instead of 100k lookups.
//!
//! A range is kept as it came from the database, in one allocation for its keys and one for its
//! values, sorted (RocksDB returns keys in byte order), and answered by binary search: loading
//! and looking up decode nothing per file. Writes made afterwards go to a small overlay that
//! lookups consult first, so what is answered always follows the database.

use std::collections::HashMap;

/// The memo value a range holds for each key.
pub(super) type Value = [u8; super::MEMO_VALUE_LEN];

/// One range: every key starting with `prefix`, as read.
struct Range {
    prefix: Vec<u8>,
    /// The keys' bytes after `prefix`, one after another.
    suffixes: Vec<u8>,
    /// Where each suffix ends in `suffixes` (sorted, like the keys).
    ends: Vec<u32>,
    values: Vec<Value>,
}

impl Range {
    fn suffix(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.suffixes[start..self.ends[i] as usize]
    }

    fn get(&self, key: &[u8]) -> Option<Value> {
        let suffix = key.strip_prefix(self.prefix.as_slice())?;
        let mut lo = 0;
        let mut hi = self.ends.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.suffix(mid).cmp(suffix) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.values[mid]),
            }
        }
        None
    }
}

/// Builds a [`Range`] from keys given in ascending order.
pub(super) struct RangeBuilder(Range);

impl RangeBuilder {
    pub(super) fn new(prefix: Vec<u8>) -> RangeBuilder {
        RangeBuilder(Range {
            prefix,
            suffixes: Vec::new(),
            ends: Vec::new(),
            values: Vec::new(),
        })
    }

    /// Adds `key` (which starts with the prefix, and sorts after every key added before).
    /// Returns false, adding nothing, when the range would outgrow its 32-bit offsets.
    pub(super) fn push(&mut self, key: &[u8], value: Value) -> bool {
        let r = &mut self.0;
        let suffix = &key[r.prefix.len()..];
        let Ok(end) = u32::try_from(r.suffixes.len() + suffix.len()) else {
            return false;
        };
        r.suffixes.extend_from_slice(suffix);
        r.ends.push(end);
        r.values.push(value);
        true
    }
}

/// Every range loaded so far, and the writes made since.
#[derive(Default)]
pub(super) struct Preloaded {
    ranges: Vec<Range>,
    /// Keys written (or deleted: `None`) after their range was loaded.
    since: HashMap<Vec<u8>, Option<Value>>,
}

impl Preloaded {
    /// Whether a range already covers every key starting with `prefix`.
    pub(super) fn covers(&self, prefix: &[u8]) -> bool {
        self.ranges.iter().any(|r| prefix.starts_with(&r.prefix))
    }

    pub(super) fn add(&mut self, range: RangeBuilder) {
        self.ranges.push(range.0);
    }

    /// The entry for `key` if a range covers it: `Some(None)` when the database has none.
    pub(super) fn lookup(&self, key: &[u8]) -> Option<Option<Value>> {
        if let Some(v) = self.since.get(key) {
            return Some(*v);
        }
        let mut covered = false;
        for r in self.ranges.iter().filter(|r| key.starts_with(&r.prefix)) {
            covered = true;
            if let Some(v) = r.get(key) {
                return Some(Some(v));
            }
        }
        covered.then_some(None)
    }

    /// Records that the database now holds `value` at `key` (`None`: nothing usable).
    pub(super) fn store(&mut self, key: Vec<u8>, value: Option<Value>) {
        if self.ranges.iter().any(|r| key.starts_with(&r.prefix)) {
            self.since.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: u8) -> Value {
        [b; super::super::MEMO_VALUE_LEN]
    }

    fn loaded(prefix: &str, keys: &[(&str, u8)]) -> Preloaded {
        let mut b = RangeBuilder::new(prefix.as_bytes().to_vec());
        for (k, x) in keys {
            assert!(b.push(k.as_bytes(), v(*x)));
        }
        let mut p = Preloaded::default();
        p.add(b);
        p
    }

    #[test]
    fn lookups_answer_every_key_of_the_range_and_only_those() {
        let keys: Vec<String> = (0..1000).map(|i| format!("hash:/d/f{i:04}")).collect();
        let pairs: Vec<(&str, u8)> = keys
            .iter()
            .map(|k| (k.as_str(), (k.len() % 7) as u8))
            .collect();
        let p = loaded("hash:/d/", &pairs);
        for (k, x) in &pairs {
            assert_eq!(p.lookup(k.as_bytes()), Some(Some(v(*x))), "{k}");
        }
        // Covered but absent: the database has no entry.
        assert_eq!(p.lookup(b"hash:/d/f10000"), Some(None));
        assert_eq!(p.lookup(b"hash:/d/"), Some(None));
        // Not covered: the caller asks the database.
        assert_eq!(p.lookup(b"hash:/dx/f0001"), None);
        assert_eq!(p.lookup(b"hash:/e/f0001"), None);
    }

    #[test]
    fn writes_after_the_load_win_and_uncovered_ones_are_not_kept() {
        let mut p = loaded("hash:/d/", &[("hash:/d/a", 1), ("hash:/d/b", 2)]);
        p.store(b"hash:/d/a".to_vec(), Some(v(9)));
        p.store(b"hash:/d/b".to_vec(), None);
        p.store(b"hash:/d/c".to_vec(), Some(v(3)));
        p.store(b"hash:/e/x".to_vec(), Some(v(4)));
        assert_eq!(p.lookup(b"hash:/d/a"), Some(Some(v(9))));
        assert_eq!(p.lookup(b"hash:/d/b"), Some(None));
        assert_eq!(p.lookup(b"hash:/d/c"), Some(Some(v(3))));
        assert_eq!(p.lookup(b"hash:/e/x"), None);
    }

    #[test]
    fn an_empty_range_covers_its_prefix() {
        let p = loaded("hash:/d/", &[]);
        assert!(p.covers(b"hash:/d/sub/"));
        assert!(!p.covers(b"hash:/"));
        assert_eq!(p.lookup(b"hash:/d/x"), Some(None));
    }
}
