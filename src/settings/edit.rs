//! Comment-preserving edits of a config file's text: set or remove one key of a block-style
//! YAML mapping by editing lines, so the user's comments, order and spacing survive `pivot
//! config set`.
//!
//! The line editor knows a small part of YAML: keys at the start of a line, nesting by
//! indentation, a scalar (or flow sequence) after `key:`, and a trailing `# comment`. It never
//! has to be right on its own: its result is accepted only when it reads back (through
//! [`lockfile::from_yaml`], YAML 1.1 as PyYAML reads it) as exactly the document the edit
//! means. Anything else (flow-style mappings, anchors, a layout the editor misjudged) falls back
//! to writing the whole document from its parsed value, and [`Edited::preserved`] says so.

use crate::lockfile::{self, YamlValue};

/// One change to a config document, at a key path (`["core", "max_workers"]`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Edit {
    Set(Vec<String>, YamlValue),
    /// Removes the key (and what is nested under it), then every mapping that is left empty.
    Remove(Vec<String>),
}

/// The text after an edit.
#[derive(Debug, PartialEq)]
pub(crate) struct Edited {
    pub text: String,
    /// False when the document had to be rewritten from its value (comments were lost).
    pub preserved: bool,
}

#[derive(thiserror::Error, Debug, PartialEq)]
pub(crate) enum EditError {
    #[error("{}", lockfile_message(.0))]
    Unreadable(lockfile::YamlError),
    /// Setting `a.b` where `a` holds a scalar or a list.
    #[error("`{0}` is not a mapping")]
    NotAMapping(String),
}

fn lockfile_message(e: &lockfile::YamlError) -> String {
    match e.line {
        Some(l) => format!("line {l}: {}", e.message),
        None => e.message.clone(),
    }
}

/// The value at `path` of a document, if there is one (null counts as none).
pub(crate) fn lookup<'a>(doc: &'a YamlValue, path: &[String]) -> Option<&'a YamlValue> {
    let mut v = doc;
    for k in path {
        v = v.get(k)?;
    }
    (*v != YamlValue::Null).then_some(v)
}

/// `text` with `edit` applied.
pub(crate) fn apply(text: &str, edit: &Edit) -> Result<Edited, EditError> {
    let doc = lockfile::from_yaml(text).map_err(EditError::Unreadable)?;
    let expected = edited_value(doc, edit)?;
    if let Some(candidate) = edit_lines(text, edit) {
        if lockfile::from_yaml(&candidate).is_ok_and(|d| same_document(&d, &expected)) {
            return Ok(Edited {
                text: candidate,
                preserved: true,
            });
        }
    }
    let text = match &expected {
        YamlValue::Map(m) if m.is_empty() => String::new(),
        other => lockfile::to_yaml(other),
    };
    Ok(Edited {
        text,
        preserved: false,
    })
}

/// An empty document and an empty mapping are the same config.
fn same_document(a: &YamlValue, b: &YamlValue) -> bool {
    let empty = |v: &YamlValue| {
        matches!(v, YamlValue::Null) || matches!(v, YamlValue::Map(m) if m.is_empty())
    };
    a == b || (empty(a) && empty(b))
}

/// The document `edit` means, from the parsed one.
fn edited_value(doc: YamlValue, edit: &Edit) -> Result<YamlValue, EditError> {
    let mut doc = match doc {
        YamlValue::Null => YamlValue::Map(Vec::new()),
        d => d,
    };
    match edit {
        Edit::Set(path, value) => set_value(&mut doc, path, value.clone(), 0)?,
        Edit::Remove(path) => {
            remove_value(&mut doc, path);
        }
    }
    Ok(doc)
}

fn set_value(
    node: &mut YamlValue,
    path: &[String],
    value: YamlValue,
    depth: usize,
) -> Result<(), EditError> {
    if *node == YamlValue::Null {
        *node = YamlValue::Map(Vec::new());
    }
    let YamlValue::Map(entries) = node else {
        return Err(EditError::NotAMapping(path[..depth].join(".")));
    };
    let (key, rest) = (&path[depth], depth + 1 == path.len());
    // PyYAML keeps the last of duplicate keys; the reader refuses them, so there is one.
    let slot = match entries.iter().position(|(k, _)| k == key) {
        Some(i) => &mut entries[i].1,
        None => {
            entries.push((key.clone(), YamlValue::Null));
            &mut entries.last_mut().expect("just pushed").1
        }
    };
    if rest {
        *slot = value;
        Ok(())
    } else {
        set_value(slot, path, value, depth + 1)
    }
}

/// Removes `path`; true when `node` is left an empty mapping (for the caller to prune).
fn remove_value(node: &mut YamlValue, path: &[String]) -> bool {
    let YamlValue::Map(entries) = node else {
        return false;
    };
    let Some(i) = entries.iter().position(|(k, _)| *k == path[0]) else {
        return false;
    };
    let prune = path.len() == 1 || remove_value(&mut entries[i].1, &path[1..]);
    if prune {
        entries.remove(i);
    }
    entries.is_empty()
}

/// A line's indentation, or `None` for a blank or comment-only line.
fn content_indent(line: &str) -> Option<usize> {
    let content = line.trim_start_matches(' ');
    (!content.is_empty() && !content.starts_with('#')).then(|| line.len() - content.len())
}

/// Where a key's line is, how deep, and the text after its `:`.
struct Found {
    line: usize,
    indent: usize,
    rest_at: usize,
}

/// The key `key` among the direct children in `lines[start..end]` (a block whose parent line is
/// indented `parent`, `None` at the root).
fn find_key(
    lines: &[String],
    start: usize,
    end: usize,
    parent: Option<usize>,
    key: &str,
) -> Option<Found> {
    let mut level = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let Some(indent) = content_indent(line) else {
            continue;
        };
        if parent.is_some_and(|p| indent <= p) {
            return None;
        }
        if indent != *level.get_or_insert(indent) {
            continue;
        }
        if let Some(len) = key_len(&line[indent..], key) {
            return Some(Found {
                line: i,
                indent,
                rest_at: indent + len,
            });
        }
    }
    None
}

/// The length of `key:` (plain or quoted) at the start of `content`, when it is that key.
fn key_len(content: &str, key: &str) -> Option<usize> {
    for spelling in [key.to_owned(), format!("'{key}'"), format!("\"{key}\"")] {
        if let Some(after) = content.strip_prefix(spelling.as_str()) {
            let after_ws = after.trim_start_matches(' ');
            if let Some(value) = after_ws.strip_prefix(':') {
                if value.is_empty() || value.starts_with(' ') {
                    return Some(content.len() - value.len());
                }
            }
        }
    }
    None
}

/// One past the last line nested under the key at `line`: indented deeper than `indent`, or
/// sequence items at its own indentation (`key:` then `- item`, as PyYAML writes a list).
fn block_end(lines: &[String], line: usize, indent: usize) -> usize {
    let mut end = line + 1;
    for (i, l) in lines.iter().enumerate().skip(line + 1) {
        match content_indent(l) {
            Some(d) if d == indent && is_item(&l[d..]) => end = i + 1,
            Some(d) if d <= indent => break,
            Some(_) => end = i + 1,
            None => {}
        }
    }
    end
}

fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// The indentation of the first child in `lines[start..end]`, if the block has one.
fn child_indent(lines: &[String], start: usize, end: usize) -> Option<usize> {
    lines[start..end].iter().find_map(|l| content_indent(l))
}

/// Splits the text after `key:` into its value and its trailing comment (with the spaces before
/// the `#`): the comment survives a new value.
fn split_comment(rest: &str) -> (&str, &str) {
    let bytes = rest.as_bytes();
    let mut quote: Option<u8> = None;
    let start = rest.len() - rest.trim_start_matches(' ').len();
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if (b == b'\'' || b == b'"') && i == start {
                    quote = Some(b);
                } else if b == b'#' && (i == 0 || bytes[i - 1] == b' ') {
                    let value_end = rest[..i].trim_end_matches(' ').len();
                    return (&rest[..value_end], &rest[value_end..]);
                }
            }
        }
        i += 1;
    }
    (rest.trim_end(), "")
}

/// The line-based edit, or `None` where the layout is beyond it (the caller then rewrites).
fn edit_lines(text: &str, edit: &Edit) -> Option<String> {
    if text.contains('\t') || text.contains('\r') {
        return None;
    }
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let path = match edit {
        Edit::Set(p, _) | Edit::Remove(p) => p,
    };
    // The chain of keys found: (line, indent) of each.
    let mut chain: Vec<Found> = Vec::new();
    let (mut start, mut end, mut parent) = (0, lines.len(), None);
    for (depth, key) in path.iter().enumerate() {
        let Some(found) = find_key(&lines, start, end, parent, key) else {
            break;
        };
        let last = depth + 1 == path.len();
        if !last {
            let (value, _) = split_comment(&lines[found.line][found.rest_at..]);
            if !value.is_empty() {
                // `core: {max_workers: 2}` or a scalar: not a block the editor can descend.
                return None;
            }
        }
        start = found.line + 1;
        end = block_end(&lines, found.line, found.indent);
        parent = Some(found.indent);
        chain.push(found);
        if last {
            break;
        }
    }
    match edit {
        Edit::Set(_, value) => {
            if chain.len() == path.len() {
                let found = chain.last().expect("the whole path was found");
                let line = &lines[found.line];
                let (_, comment) = split_comment(&line[found.rest_at..]);
                let new = format!("{} {}{comment}", &line[..found.rest_at], scalar(value)?);
                let nested = block_end(&lines, found.line, found.indent);
                lines.splice(found.line..nested, [new]);
            } else {
                let depth = chain.len();
                let (at, indent) = match chain.last() {
                    None => (
                        lines.len(),
                        child_indent(&lines, 0, lines.len()).unwrap_or(0),
                    ),
                    Some(p) => {
                        let end = block_end(&lines, p.line, p.indent);
                        let indent = child_indent(&lines, p.line + 1, end).unwrap_or(p.indent + 2);
                        (end, indent)
                    }
                };
                let mut new = Vec::new();
                for (i, key) in path[depth..].iter().enumerate() {
                    let pad = " ".repeat(indent + 2 * i);
                    let key = scalar(&YamlValue::Str(key.clone()))?;
                    if depth + i + 1 == path.len() {
                        new.push(format!("{pad}{key}: {}", scalar(value)?));
                    } else {
                        new.push(format!("{pad}{key}:"));
                    }
                }
                lines.splice(at..at, new);
            }
        }
        Edit::Remove(_) => {
            if chain.len() < path.len() {
                return None;
            }
            // Remove the key, then each parent left with no key of its own.
            for (depth, found) in chain.iter().enumerate().rev() {
                let end = block_end(&lines, found.line, found.indent);
                let leaf = depth + 1 == chain.len();
                if leaf || child_indent(&lines, found.line + 1, end).is_none() {
                    // A parent's own comment lines nested under it stay (commented-out keys).
                    let cut = if leaf { end } else { found.line + 1 };
                    lines.drain(found.line..cut);
                } else {
                    break;
                }
            }
        }
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Some(out)
}

/// A value as it goes after `key: ` on one line, or `None` for what needs more than a line.
/// Strings are plain where that reads back the same in YAML 1.1 and means no number, boolean or
/// null in YAML 1.2 either (`1e3`, `0o17`); otherwise single-quoted, double-quoted when they hold
/// control characters.
pub(crate) fn scalar(value: &YamlValue) -> Option<String> {
    Some(match value {
        YamlValue::Null => "null".into(),
        YamlValue::Bool(b) => b.to_string(),
        YamlValue::Int(i) => i.to_string(),
        YamlValue::Float(f) => lockfile::float_repr(*f),
        YamlValue::Str(s) => string(s, false),
        YamlValue::Seq(items) => {
            let items: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    YamlValue::Str(s) => Some(string(s, true)),
                    YamlValue::Seq(_) | YamlValue::Map(_) => None,
                    other => scalar(other),
                })
                .collect();
            format!("[{}]", items?.join(", "))
        }
        YamlValue::Map(m) if m.is_empty() => "{}".into(),
        YamlValue::Map(_) => return None,
    })
}

fn string(s: &str, in_flow: bool) -> String {
    if plain_ok(s, in_flow) {
        s.to_owned()
    } else if s.chars().all(|c| !c.is_control()) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(s).expect("invariant: a string always encodes as JSON")
    }
}

fn plain_ok(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // A leading digit may be a number, a date or base 60 to some YAML reader: quoted.
    let safe_first =
        first.is_alphabetic() || matches!(first, '/' | '.' | '_' | '~' | '$' | '(' | '^');
    let safe = |c: char| {
        c.is_alphanumeric()
            || matches!(
                c,
                '/' | '.' | '_' | '-' | '+' | '=' | ':' | '@' | '~' | '%' | '$' | '(' | ')' | '^'
            )
            || (!in_flow && c == ',')
    };
    safe_first
        && s.chars().all(safe)
        && !s.ends_with(':')
        && !typed_in_yaml_1_2(s)
        && lockfile::from_yaml(&format!("k: {s}\n"))
            .is_ok_and(|d| d.get("k") == Some(&YamlValue::Str(s.to_owned())))
}

/// Whether YAML 1.2's core schema reads `s` as a number, boolean or null (the string YAML 1.1
/// makes of `1e3` would be a float to a YAML 1.2 reader).
fn typed_in_yaml_1_2(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "null" | "~" | ".inf" | "-.inf" | "+.inf" | ".nan"
    ) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(oct) = s.strip_prefix("0o") {
        return !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b));
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => (digits(a) && (b.is_empty() || digits(b))) || (a.is_empty() && digits(b)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(dotted: &str) -> Vec<String> {
        dotted.split('.').map(str::to_owned).collect()
    }

    fn set(text: &str, key: &str, value: YamlValue) -> Edited {
        apply(text, &Edit::Set(path(key), value)).unwrap()
    }

    fn remove(text: &str, key: &str) -> Edited {
        apply(text, &Edit::Remove(path(key))).unwrap()
    }

    #[track_caller]
    fn preserved(e: Edited) -> String {
        assert!(e.preserved, "rewritten:\n{}", e.text);
        e.text
    }

    #[test]
    fn a_value_is_replaced_in_place_keeping_comments_and_order() {
        let text = "\
# pivot settings
core:
  max_workers: 2   # two cores here
  # lock_timeout: 5
  run_history_retention: 10
cache:
  checkout_mode: [copy]
";
        let out = preserved(set(text, "core.max_workers", YamlValue::Int(4)));
        assert_eq!(
            out,
            text.replace("max_workers: 2   #", "max_workers: 4   #")
        );
        let out = preserved(set(
            text,
            "cache.checkout_mode",
            YamlValue::Str("symlink".into()),
        ));
        assert_eq!(out, text.replace("[copy]", "symlink"));
    }

    #[test]
    fn a_missing_key_goes_at_the_end_of_its_parent_with_its_indentation() {
        let text = "core:\n    max_workers: 2\n    # a comment\nother: 1\n";
        let out = preserved(set(text, "core.lock_timeout", YamlValue::Int(3)));
        assert_eq!(
            out,
            "core:\n    max_workers: 2\n    lock_timeout: 3\n    # a comment\nother: 1\n"
        );
        // A new parent: at the end of the document, two spaces per level.
        let out = preserved(set(
            text,
            "remote_options.origin.region",
            "eu-west-1".into(),
        ));
        assert_eq!(
            out,
            format!("{text}remote_options:\n  origin:\n    region: eu-west-1\n")
        );
        // A parent with no children yet (`core:` alone is null).
        let out = preserved(set(
            "core:\n# note\n",
            "core.max_workers",
            YamlValue::Int(1),
        ));
        assert_eq!(out, "core:\n  max_workers: 1\n# note\n");
        assert_eq!(
            preserved(set("", "default_remote", "origin".into())),
            "default_remote: origin\n"
        );
    }

    #[test]
    fn a_nested_insert_finds_the_parent_among_deeper_blocks() {
        let text =
            "remotes:\n  a: s3://a\nremote_options:\n  a:\n    region: x\n  b:\n    jobs: 2\n";
        let out = preserved(set(
            text,
            "remote_options.a.endpoint",
            "http://h:9000".into(),
        ));
        assert_eq!(
            out,
            "remotes:\n  a: s3://a\nremote_options:\n  a:\n    region: x\n    endpoint: http://h:9000\n  b:\n    jobs: 2\n"
        );
    }

    #[test]
    fn a_block_value_is_replaced_with_its_nested_lines() {
        let text = "cache:\n  checkout_mode:\n    - copy\n    - symlink\ncore:\n  max_workers: 1\n";
        let out = preserved(set(
            text,
            "cache.checkout_mode",
            YamlValue::Seq(vec!["hardlink".into(), "copy".into()]),
        ));
        assert_eq!(
            out,
            "cache:\n  checkout_mode: [hardlink, copy]\ncore:\n  max_workers: 1\n"
        );
    }

    #[test]
    fn a_list_written_the_way_pyyaml_writes_it_is_replaced_and_removed_whole() {
        let text =
            "cache:\n  checkout_mode:\n  - copy\n  - symlink\n  # after\ncore:\n  max_workers: 1\n";
        let out = preserved(set(text, "cache.checkout_mode", "hardlink".into()));
        assert_eq!(
            out,
            "cache:\n  checkout_mode: hardlink\n  # after\ncore:\n  max_workers: 1\n"
        );
        let out = preserved(remove(text, "cache.checkout_mode"));
        assert_eq!(out, "  # after\ncore:\n  max_workers: 1\n");
        let root = "modes:\n- copy\nother: 1\n";
        assert_eq!(preserved(remove(root, "modes")), "other: 1\n");
    }

    #[test]
    fn removing_a_key_prunes_parents_left_empty_and_keeps_the_rest() {
        let text =
            "# top\nremote_options:\n  origin:\n    region: x  # why\nremotes:\n  origin: s3://b\n";
        let out = preserved(remove(text, "remote_options.origin.region"));
        assert_eq!(out, "# top\nremotes:\n  origin: s3://b\n");
        let out = preserved(remove(text, "remotes.origin"));
        assert_eq!(
            out,
            "# top\nremote_options:\n  origin:\n    region: x  # why\n"
        );
        let text = "core:\n  max_workers: 1\n  lock_timeout: 2\n";
        assert_eq!(
            preserved(remove(text, "core.max_workers")),
            "core:\n  lock_timeout: 2\n"
        );
        // The nested block goes with its key.
        let text = "remote_options:\n  a:\n    jobs: 1\n  b:\n    jobs: 2\n";
        assert_eq!(
            preserved(remove(text, "remote_options.a")),
            "remote_options:\n  b:\n    jobs: 2\n"
        );
    }

    #[test]
    fn values_yaml_would_misread_are_single_quoted() {
        for (value, spelled) in [
            ("yes", "'yes'"),
            ("010", "'010'"),
            ("1e3", "'1e3'"),
            ("0o17", "'0o17'"),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("#x", "'#x'"),
            ("it's here", "'it''s here'"),
            ("", "''"),
            (" pad", "' pad'"),
            ("null", "'null'"),
            ("~", "'~'"),
            ("-", "'-'"),
            ("x:", "'x:'"),
            ("2001-01-01", "'2001-01-01'"),
            ("a\tb", "\"a\\tb\""),
        ] {
            let out = set("core:\n  x: 1\n", "core.x", value.into());
            assert_eq!(out.text, format!("core:\n  x: {spelled}\n"), "{value:?}");
            let back = lockfile::from_yaml(&out.text).unwrap();
            assert_eq!(
                back.get("core").unwrap().get("x"),
                Some(&YamlValue::Str(value.into()))
            );
        }
        for plain in [
            "s3://bucket/prefix",
            "/srv/remote",
            "eu-west-1",
            "../rel/dir",
            "https://h:9000/p",
        ] {
            let out = preserved(set("", "k", plain.into()));
            assert_eq!(out, format!("k: {plain}\n"));
        }
    }

    #[test]
    fn every_edit_reads_back_as_the_value_set() {
        let base = "# c\ncore:\n  max_workers: 2 # keep\nremotes:\n  origin: s3://a\n";
        let values = [
            YamlValue::Int(-3),
            YamlValue::Float(2.5),
            YamlValue::Bool(true),
            YamlValue::Str("on".into()),
            YamlValue::Str("x # y: z".into()),
            YamlValue::Seq(vec!["a,b".into(), "yes".into(), YamlValue::Int(1)]),
        ];
        for key in [
            "core.max_workers",
            "core.new",
            "remotes.origin",
            "remote_options.o.jobs",
            "top",
        ] {
            for v in &values {
                let out = set(base, key, v.clone());
                assert!(out.preserved, "{key} {v:?}:\n{}", out.text);
                assert!(out.text.starts_with("# c\n"), "{}", out.text);
                let back = lockfile::from_yaml(&out.text).unwrap();
                assert_eq!(lookup(&back, &path(key)), Some(v), "{key}:\n{}", out.text);
            }
        }
    }

    #[test]
    fn quoted_keys_are_found() {
        let text = "remotes:\n  'on': s3://a\n  \"b\": s3://b\n";
        let out = preserved(set(text, "remotes.on", "s3://c".into()));
        assert_eq!(out, "remotes:\n  'on': s3://c\n  \"b\": s3://b\n");
        assert_eq!(
            preserved(remove(text, "remotes.b")),
            "remotes:\n  'on': s3://a\n"
        );
    }

    #[test]
    fn flow_style_falls_back_to_a_rewrite_of_the_document() {
        let out = set(
            "core: {max_workers: 2}  # flow\n",
            "core.lock_timeout",
            YamlValue::Int(1),
        );
        assert!(!out.preserved);
        assert_eq!(out.text, "core:\n  max_workers: 2\n  lock_timeout: 1\n");
        let out = remove("{remotes: {a: s3://a}}\n", "remotes.a");
        assert_eq!(
            out,
            Edited {
                text: String::new(),
                preserved: false
            }
        );
    }

    #[test]
    fn setting_under_a_scalar_is_refused_and_broken_yaml_is_not_edited() {
        assert_eq!(
            apply(
                "core: 3\n",
                &Edit::Set(path("core.max_workers"), YamlValue::Int(1))
            ),
            Err(EditError::NotAMapping("core".into()))
        );
        assert!(matches!(
            apply("core:\n  a: 1\n a: 2\n", &Edit::Remove(path("core.a"))),
            Err(EditError::Unreadable(_))
        ));
    }

    #[test]
    fn a_file_without_a_final_newline_gets_one() {
        assert_eq!(
            preserved(set("core:\n  x: 1", "core.x", YamlValue::Int(2))),
            "core:\n  x: 2\n"
        );
    }
}
