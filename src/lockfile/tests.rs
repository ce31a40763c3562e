//! Tests of lock-file reading and writing and of the PyYAML-compatible YAML writer and reader.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

const PREP_LOCK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference_locks/prep.lock"
));
const TRAIN_LOCK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference_locks/train.lock"
));

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

fn write_tmp(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stage.lock");
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn read_text(text: &str) -> Result<Option<LockFile>, LockError> {
    let (_dir, path) = write_tmp(text);
    read(&path)
}

fn corrupt_line_and_message(text: &str) -> (Option<usize>, String) {
    match read_text(text) {
        Err(LockError::Corrupt { line, message, .. }) => (line, message),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn reference_lock_files_read_and_render_byte_for_byte() {
    for (name, text) in [("prep", PREP_LOCK), ("train", TRAIN_LOCK)] {
        let lock = read_text(text).unwrap().unwrap();
        assert_eq!(render(&lock), text, "{name}.lock");
    }
}

#[test]
fn reference_lock_values_are_read_with_their_types() {
    let lock = read_text(TRAIN_LOCK).unwrap().unwrap();
    assert_eq!(lock.code_manifest["const:THRESHOLD"], "0.25");
    assert_eq!(
        serde_json::Value::Object(lock.params.clone()),
        serde_json::json!({"lr": 0.01, "epochs": 10})
    );
    assert_eq!(lock.params.keys().collect::<Vec<_>>(), ["lr", "epochs"]);
    let outs: Vec<_> = lock
        .outs
        .iter()
        .map(|e| (e.path.as_str(), e.hash.as_str()))
        .collect();
    assert_eq!(
        outs,
        [
            ("metrics/train.json", "f4ff9b0b1fbe931c"),
            ("models/model.json", "c280732ca1ab5222")
        ]
    );
    assert_eq!(
        read_text(PREP_LOCK).unwrap().unwrap().code_manifest["const:SCALE"],
        "3"
    );
}

#[test]
fn render_sorts_entries_and_code_manifest_and_writes_manifests() {
    let entry = |path: &str, hash: &str| LockEntry {
        path: path.into(),
        hash: digest(hash),
        manifest: None,
    };
    let mut params = serde_json::Map::new();
    params.insert("zeta".into(), serde_json::json!(1e-5));
    params.insert("alpha".into(), serde_json::json!("yes"));
    let lock = LockFile {
        code_manifest: [
            ("self:train", "4189fca5389dd1dd"),
            ("const:N", "3"),
            ("class:A", "1234567890123456"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        params,
        deps: vec![
            entry("data/b", "0000000000000001"),
            LockEntry {
                manifest: Some(vec![ManifestEntry {
                    relpath: crate::repo_path::RepoPath::parse("x.txt").unwrap(),
                    hash: digest("fbbde8981eccc855"),
                    size: 2,
                    isexec: true,
                }]),
                ..entry("data/a-b", "10068b8a4894028c")
            },
            entry("data/a/x", "12e4567890123456"),
        ],
        outs: vec![LockEntry {
            manifest: Some(vec![]),
            ..entry("out/", "ccab0b28617f1f56")
        }],
    };
    // Expected text written with PyYAML 6.0.3 `safe_dump(sort_keys=False)` for the same data.
    let want = r#"schema_version: 1
code_manifest:
  class:A: '1234567890123456'
  const:N: '3'
  self:train: 4189fca5389dd1dd
params:
  zeta: 1.0e-05
  alpha: 'yes'
deps:
- path: data/a-b
  hash: 10068b8a4894028c
  manifest:
  - relpath: x.txt
    hash: fbbde8981eccc855
    size: 2
    isexec: true
- path: data/a/x
  hash: 12e4567890123456
- path: data/b
  hash: '0000000000000001'
outs:
- path: out/
  hash: ccab0b28617f1f56
  manifest: []
dep_generations: {}
"#;
    assert_eq!(render(&lock), want);
    let back = read_text(want).unwrap().unwrap();
    assert_eq!(render(&back), want);
    assert_eq!(back.deps[1].hash.as_str(), "12e4567890123456");
}

#[test]
fn absent_lock_file_is_none() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read(&dir.path().join("nope.lock")).unwrap().is_none());
}

#[test]
fn invalid_yaml_is_corrupt_with_its_line() {
    let text = "schema_version: 1\ncode_manifest:\n  a: b\n - c\nparams: {}\n";
    let (line, message) = corrupt_line_and_message(text);
    assert_eq!(line, Some(4), "{message}");
    let (line, _) = corrupt_line_and_message("schema_version: 1\nparams: {\n");
    assert!(line.is_some());
}

#[test]
fn corrupt_error_names_file_and_line() {
    let (_dir, path) = write_tmp("a: b\n c: d\n");
    let err = read(&path).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "corrupt lock file `{}` at line 2: ",
            path.display()
        )),
        "{shown}"
    );
}

#[test]
fn missing_or_null_required_keys_are_corrupt() {
    for key in ["code_manifest", "params", "deps", "outs", "dep_generations"] {
        // Drop the key's line and the indented or `- ` lines that belong to it.
        let mut dropping = false;
        let mut without = String::new();
        for l in TRAIN_LOCK.lines() {
            if !l.starts_with([' ', '-']) {
                dropping = l.starts_with(&format!("{key}:"));
            }
            if !dropping {
                without.push_str(l);
                without.push('\n');
            }
        }
        let (_, message) = corrupt_line_and_message(&without);
        assert_eq!(message, format!("missing `{key}`"));
    }
    let nulled = TRAIN_LOCK.replace("dep_generations: {}", "dep_generations: null");
    assert_eq!(
        corrupt_line_and_message(&nulled).1,
        "missing `dep_generations`"
    );
    let nulled = TRAIN_LOCK.replace("params:\n  lr: 0.01\n  epochs: 10\n", "params:\n");
    assert_eq!(corrupt_line_and_message(&nulled).1, "missing `params`");
}

#[test]
fn non_mapping_documents_are_corrupt() {
    for text in [
        "",
        "# only a comment\n",
        "---\n",
        "- a\n",
        "just text\n",
        "null\n",
    ] {
        assert_eq!(
            corrupt_line_and_message(text).1,
            "the document is not a mapping",
            "{text:?}"
        );
    }
}

#[test]
fn malformed_entries_and_digests_are_corrupt() {
    let bad_digest = PREP_LOCK.replace("hash: 3df03325f4414bc6", "hash: 3DF03325F4414BC6");
    assert!(corrupt_line_and_message(&bad_digest)
        .1
        .contains("`deps[0].hash` is not a digest"));
    let bad_size = "code_manifest: {}\nparams: {}\ndeps:\n- path: d\n  hash: 9561173c8b8630b0\n  manifest:\n  \
                    - relpath: x\n    hash: fbbde8981eccc855\n    size: '2'\n    isexec: false\nouts: []\n\
                    dep_generations: {}\n";
    assert_eq!(
        corrupt_line_and_message(bad_size).1,
        "`deps[0].manifest[0].size` is not an integer"
    );
    let unquoted_number = TRAIN_LOCK.replace("'0.25'", "0.25");
    assert_eq!(
        corrupt_line_and_message(&unquoted_number).1,
        "`code_manifest.const:THRESHOLD` is not a string"
    );
}

#[test]
fn schema_version_zero_or_absent_is_read_and_extra_keys_are_tolerated() {
    let v0 = PREP_LOCK.replace("schema_version: 1\n", "");
    let lock = read_text(&v0).unwrap().unwrap();
    assert_eq!(render(&lock), PREP_LOCK);
    let extra = format!("{PREP_LOCK}future_key:\n- 1\n");
    assert_eq!(render(&read_text(&extra).unwrap().unwrap()), PREP_LOCK);
    let v2 = PREP_LOCK.replace("schema_version: 1", "schema_version: 2");
    assert_eq!(
        corrupt_line_and_message(&v2).1,
        "unsupported `schema_version` 2"
    );
}

#[test]
fn write_atomic_creates_stage_subdirectories_with_mode_0644() {
    let dir = tempfile::tempdir().unwrap();
    let path = lock_path(&dir.path().join(".pivot"), "group/train");
    assert_eq!(path, dir.path().join(".pivot/stages/group/train.lock"));
    let lock = read_text(TRAIN_LOCK).unwrap().unwrap();
    write_atomic(&path, &lock).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), TRAIN_LOCK);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Overwrite in place; no temp files are left behind.
    write_atomic(&path, &read_text(PREP_LOCK).unwrap().unwrap()).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), PREP_LOCK);
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["train.lock"]);
}

#[test]
fn yaml_writer_matches_pyyaml_golden_outputs() {
    for (json, yaml) in GOLDEN {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(to_yaml(&YamlValue::from(&value)), *yaml, "for {json}");
    }
}

#[test]
fn yaml_reader_reads_golden_outputs_back_to_the_same_values() {
    for (json, yaml) in GOLDEN {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            from_yaml(yaml).unwrap(),
            YamlValue::from(&value),
            "for {yaml}"
        );
    }
}

#[test]
fn non_finite_floats_are_written_as_pyyaml_does() {
    // PyYAML 6.0.3: safe_dump([float('nan'), float('inf'), float('-inf')])
    let v = YamlValue::Seq(vec![
        YamlValue::Float(f64::NAN),
        YamlValue::Float(f64::INFINITY),
        YamlValue::Float(f64::NEG_INFINITY),
    ]);
    assert_eq!(to_yaml(&v), "- .nan\n- .inf\n- -.inf\n");
    let YamlValue::Seq(back) = from_yaml("- .nan\n- .inf\n- -.inf\n").unwrap() else {
        panic!()
    };
    assert!(matches!(back[0], YamlValue::Float(f) if f.is_nan()));
    assert_eq!(
        back[1..],
        [
            YamlValue::Float(f64::INFINITY),
            YamlValue::Float(f64::NEG_INFINITY)
        ]
    );
}

#[test]
fn yaml_reader_types_plain_scalars_by_yaml_1_1_rules() {
    let doc = "a: yes\nb: 'yes'\nc: 1e3\nd: 0o17\ne: 08\nf: 0x1F\ng: 1_000\nh: ~\ni: 1:30\nj: \"3\"\nk: 0.5\nl: .inf\n";
    let want = YamlValue::Map(vec![
        ("a".into(), YamlValue::Bool(true)),
        ("b".into(), YamlValue::str("yes")),
        ("c".into(), YamlValue::str("1e3")),
        ("d".into(), YamlValue::str("0o17")),
        ("e".into(), YamlValue::str("08")),
        ("f".into(), YamlValue::Int(31)),
        ("g".into(), YamlValue::Int(1000)),
        ("h".into(), YamlValue::Null),
        ("i".into(), YamlValue::Int(90)),
        ("j".into(), YamlValue::str("3")),
        ("k".into(), YamlValue::Float(0.5)),
        ("l".into(), YamlValue::Float(f64::INFINITY)),
    ]);
    assert_eq!(from_yaml(doc).unwrap(), want);
}

#[test]
fn yaml_reader_reads_an_empty_or_comment_only_document_as_null() {
    for text in [
        "",
        "\n",
        "# a comment\n# another\n",
        "---\n",
        "--- # c\n",
        "~\n",
        "null",
    ] {
        assert_eq!(from_yaml(text), Ok(YamlValue::Null), "{text:?}");
    }
}

#[test]
fn line_of_key_follows_block_mappings_past_comments_and_other_sections() {
    let text = "\
# core:
#   max_workers: 4
cache:
  max_workers: 9
core:

  other:
    max_workers: 8
  # max_workers: 7
  'max_workers':  0
\"top\": {a: 1}
";
    assert_eq!(line_of_key(text, &["core", "max_workers"]), Some(10));
    assert_eq!(line_of_key(text, &["core"]), Some(5));
    assert_eq!(line_of_key(text, &["cache", "max_workers"]), Some(4));
    assert_eq!(
        line_of_key(text, &["core", "other", "max_workers"]),
        Some(8)
    );
    // Flow style: the deepest key found.
    assert_eq!(line_of_key(text, &["top", "a"]), Some(11));
    // A key missing from its section does not match one further down.
    assert_eq!(line_of_key(text, &["cache", "other"]), Some(3));
    assert_eq!(line_of_key(text, &["max_workers"]), None);
    assert_eq!(line_of_key("core_x: 1\ncore:x\n", &["core"]), None);
}

#[test]
fn float_repr_follows_python_repr() {
    let cases = [
        (0.01, "0.01"),
        (1e-5, "1.0e-05"),
        (1e16, "1.0e+16"),
        (1e15, "1000000000000000.0"),
        (-0.0, "-0.0"),
        (0.0001, "0.0001"),
        (123456789.0, "123456789.0"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5.0e-324"),
        // A tie between two shortest candidates: Python keeps the even digit.
        (-1130993104170237.2, "-1130993104170237.2"),
    ];
    for (v, want) in cases {
        assert_eq!(float_repr(v), want);
    }
}

// Generated once by PyYAML 6.0.3 `yaml.safe_dump(data, sort_keys=False)` from the JSON on the left.
const GOLDEN: &[(&str, &str)] = &[
    (
        r##"{"deps": [{"path": "data/shards", "hash": "9561173c8b8630b0", "manifest": [{"relpath": "x.txt", "hash": "fbbde8981eccc855", "size": 2, "isexec": false}]}], "outs": [], "dep_generations": {}}"##,
        r##"deps:
- path: data/shards
  hash: 9561173c8b8630b0
  manifest:
  - relpath: x.txt
    hash: fbbde8981eccc855
    size: 2
    isexec: false
outs: []
dep_generations: {}
"##,
    ),
    (
        r##"{"params": {"lr": 0.01, "epochs": 10, "layers": [64, 32], "grid": [[1, 2], [], [3.5]], "stages": [{"name": "a", "opts": {}}, {"name": "b", "opts": {"k": [true, null]}}], "empty": {}}}"##,
        r##"params:
  lr: 0.01
  epochs: 10
  layers:
  - 64
  - 32
  grid:
  - - 1
    - 2
  - []
  - - 3.5
  stages:
  - name: a
    opts: {}
  - name: b
    opts:
      k:
      - true
      - null
  empty: {}
"##,
    ),
    (
        r##"{"quoted": ["3", "0.25", "1234567890123456", "0123456701234567", "1_000", "0x1F", "1:30", "1.0e+3", ".5", "-.inf", ".NaN", "yes", "No", "on", "OFF", "true", "False", "null", "~", "", "2001-12-14", "2001-12-14 21:59:43.10 -5", "<<", "="]}"##,
        r##"quoted:
- '3'
- '0.25'
- '1234567890123456'
- '0123456701234567'
- '1_000'
- '0x1F'
- '1:30'
- '1.0e+3'
- '.5'
- '-.inf'
- '.NaN'
- 'yes'
- 'No'
- 'on'
- 'OFF'
- 'true'
- 'False'
- 'null'
- '~'
- ''
- '2001-12-14'
- '2001-12-14 21:59:43.10 -5'
- '<<'
- '='
"##,
    ),
    (
        r##"{"plain": ["12e4567890123456", "1e3", "0800000000000000", "0o17", "+.5", "abc def", "data/raw.txt", "a:b", "a#b", "x-y", "-x", "?x", ":x", "https://x.y/z?q=1", "yes!"]}"##,
        r##"plain:
- 12e4567890123456
- 1e3
- 0800000000000000
- 0o17
- +.5
- abc def
- data/raw.txt
- a:b
- a#b
- x-y
- -x
- ?x
- :x
- https://x.y/z?q=1
- yes!
"##,
    ),
    (
        r##"{"edges": [" lead", "trail ", "a: b", "a #b", "- x", "? x", ": x", "---", "...x", "it's", "a  b"]}"##,
        r##"edges:
- ' lead'
- 'trail '
- 'a: b'
- 'a #b'
- '- x'
- '? x'
- ': x'
- '---'
- '...x'
- it's
- a  b
"##,
    ),
    (
        r##"{"indicators": [",x", "[x", "]x", "{x", "}x", "#x", "&x", "*x", "!x", "|x", ">x", "'x", "\"x", "%x", "@x", "`x"]}"##,
        r##"indicators:
- ',x'
- '[x'
- ']x'
- '{x'
- '}x'
- '#x'
- '&x'
- '*x'
- '!x'
- '|x'
- '>x'
- '''x'
- '"x'
- '%x'
- '@x'
- '`x'
"##,
    ),
    (
        r##"{"escapes": ["caf\u00e9", "tab\there", "cr\rx", "nul\u0000", "bell\u0007", "esc\u001b", "nbsp\u00a0", "nel\u0085", "ls\u2028", "bom\ufeff", "emoji \ud83d\ude00", "back\\slash", "quote\"s", "\u4e2d\u6587"]}"##,
        r##"escapes:
- "caf\xE9"
- "tab\there"
- "cr\rx"
- "nul\0"
- "bell\a"
- "esc\e"
- "nbsp\_"
- "nel\N"
- "ls\L"
- "bom\uFEFF"
- "emoji \U0001F600"
- back\slash
- quote"s
- "\u4E2D\u6587"
"##,
    ),
    (
        r##"{"multiline": ["a\nb", "a\n", "\nb", "a\n\nb", "a \nb", "a\n b", "it's\nmultiline"]}"##,
        r##"multiline:
- 'a

  b'
- 'a

  '
- '

  b'
- 'a


  b'
- "a \nb"
- "a\n b"
- 'it''s

  multiline'
"##,
    ),
    (
        r##"{"long_plain": "word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word", "long_single": "'quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted", "long_double": "caf\u00e9 escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped", "nested": {"deeper": [{"text": "lorem ipsum dolor sit amet consectetur adipiscing elit lorem ipsum dolor sit amet consectetur adipiscing elit lorem ipsum dolor sit amet consectetur adipiscing elit lorem ipsum dolor sit amet consectetur adipiscing elit lorem ipsum dolor sit amet consectetur adipiscing elit"}]}}"##,
        r##"long_plain: word word word word word word word word word word word word word word
  word word word word word word word word word word word word word word word word
  word word word word word word word word word word
long_single: '''quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted
  quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted quoted
  quoted quoted quoted quoted quoted quoted quoted quoted'
long_double: "caf\xE9 escaped escaped escaped escaped escaped escaped escaped escaped\
  \ escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped\
  \ escaped escaped escaped escaped escaped escaped escaped escaped escaped escaped\
  \ escaped escaped"
nested:
  deeper:
  - text: lorem ipsum dolor sit amet consectetur adipiscing elit lorem ipsum dolor
      sit amet consectetur adipiscing elit lorem ipsum dolor sit amet consectetur
      adipiscing elit lorem ipsum dolor sit amet consectetur adipiscing elit lorem
      ipsum dolor sit amet consectetur adipiscing elit
"##,
    ),
    (
        r##"{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx": 1, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy": 2, "": 3, "multi\nline key": 4, "caf\u00e9": 5, "3": 6, "null": 7}"##,
        r##"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: 1
? yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy
: 2
? ''
: 3
? 'multi

  line key'
: 4
"caf\xE9": 5
'3': 6
'null': 7
"##,
    ),
    (
        r##"{"floats": [0.01, 1e-05, 1.5e-07, 0.0001, 1e+16, 1000000000000000.0, 1.5e+16, 0.1, -0.0, 0.0, 3.0, 123456789.0, 1e+22, 5e-324, 1.7976931348623157e+308, -1130993104170237.2, 2.5e-05, 1e+100], "ints": [0, -1, 9223372036854775807, -9223372036854775808, 18446744073709551615], "bools": [true, false], "none": null}"##,
        r##"floats:
- 0.01
- 1.0e-05
- 1.5e-07
- 0.0001
- 1.0e+16
- 1000000000000000.0
- 1.5e+16
- 0.1
- -0.0
- 0.0
- 3.0
- 123456789.0
- 1.0e+22
- 5.0e-324
- 1.7976931348623157e+308
- -1130993104170237.2
- 2.5e-05
- 1.0e+100
ints:
- 0
- -1
- 9223372036854775807
- -9223372036854775808
- 18446744073709551615
bools:
- true
- false
none: null
"##,
    ),
    (
        r##""plain root""##,
        r##"plain root
...
"##,
    ),
    (
        r##""'quoted root""##,
        r##"'''quoted root'
"##,
    ),
    (
        r##""""##, r##"''
"##,
    ),
    (
        r##"[1, "two", [3]]"##,
        r##"- 1
- two
- - 3
"##,
    ),
    (
        r##"[]"##, r##"[]
"##,
    ),
    (
        r##"{}"##, r##"{}
"##,
    ),
];
