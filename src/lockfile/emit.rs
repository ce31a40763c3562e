//! A YAML writer that produces what PyYAML's `yaml.safe_dump(data, sort_keys=False)` produces.
//!
//! Lock and `.pvt` files are committed to git and written by both pivot and the reference, so the
//! bytes must agree or every run would churn the diff. This is a re-derivation of the behaviour of
//! PyYAML 6's `Emitter` for the events its `SafeRepresenter` produces with the `safe_dump` defaults
//! (block style, indent 2, width 80, `allow_unicode=False`, implicit document, no tags or anchors):
//! - only empty collections are written in flow style (`{}`, `[]`);
//! - a block sequence that is a mapping value is not indented under its key;
//! - a string is written plain unless its plain spelling would read back as another type (YAML 1.1
//!   rules, see `resolve.rs`) or it contains indicators, edge spaces, breaks or non-printable
//!   characters; then single-quoted if that can represent it, else double-quoted with escapes
//!   (every non-ASCII character is escaped);
//! - plain and single-quoted scalars fold at a single space once the column passes 80, and
//!   double-quoted ones wrap with `\` continuations;
//! - floats use Python's `repr` with `.0` inserted before a bare exponent (`1.0e-05`).

use super::resolve;
use super::YamlValue;

const BEST_INDENT: usize = 2;
const BEST_WIDTH: usize = 80;

/// Serializes `value` as PyYAML's `safe_dump(value, sort_keys=False)` would.
pub fn to_yaml(value: &YamlValue) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        open_ended: false,
        indent: None,
        indents: Vec::new(),
    };
    e.node(
        value,
        Context {
            root: true,
            ..Context::default()
        },
    );
    e.write_indent();
    if e.open_ended {
        // A plain scalar at the root could be continued by a later document; PyYAML ends it.
        e.write_indicator("...", true, false, false);
        e.write_indent();
    }
    e.out
}

/// Python's `repr(float)` as PyYAML's `represent_float` adjusts it.
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return ".nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let mut s = python_float_repr(v);
    if !s.contains('.') && s.contains('e') {
        s = s.replacen('e', ".0e", 1);
    }
    s
}

/// Python's `repr` of a finite float: the shortest digits that round-trip, positional when the
/// decimal exponent is in -4..16, scientific otherwise.
fn python_float_repr(v: f64) -> String {
    let (digits, exp) = shortest_digits(v.abs());
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let n = digits.len() as i32;
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs())
    }
}

/// Significant digits (no trailing zeros) and decimal exponent of the shortest round-trip form.
///
/// Rust's `{:e}` finds the shortest length, but when two strings of that length round-trip at
/// equal distance from the exact binary value it rounds up, where Python's `repr` (David Gay's
/// dtoa) takes the closest and ties to even: `-1130993104170237.25` is `...237.2` in Python.
/// Rounding the exact value to that many digits (Rust's precision formatting is correctly rounded,
/// ties to even) gives Python's choice; it is kept only if it still round-trips.
fn shortest_digits(v: f64) -> (String, i32) {
    let split = |sci: &str| -> (String, i32) {
        let (mantissa, exp) = sci
            .split_once('e')
            .expect("invariant: `{:e}` always has an exponent");
        let exp = exp
            .parse()
            .expect("invariant: `{:e}` exponent is an integer");
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let trimmed = digits.trim_end_matches('0');
        (
            if trimmed.is_empty() {
                "0".to_owned()
            } else {
                trimmed.to_owned()
            },
            exp,
        )
    };
    let shortest = format!("{v:e}");
    let (digits, exp) = split(&shortest);
    if digits.len() > 1 {
        let nearest = format!("{v:.prec$e}", prec = digits.len() - 1);
        if nearest.parse::<f64>() == Ok(v) {
            return split(&nearest);
        }
    }
    (digits, exp)
}

#[derive(Clone, Copy, Default)]
struct Context {
    root: bool,
    mapping: bool,
    simple_key: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// What PyYAML's `analyze_scalar` decides about a string.
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_break(c: char) -> bool {
    matches!(
        c,
        '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn analyze(text: &[char]) -> Analysis {
    if text.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let starts = |p: &str| text.len() >= 3 && text[..3].iter().copied().eq(p.chars());
    let mut block_indicators = starts("---") || starts("...");
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_ws = true;
    let last = text.len() - 1;
    for (i, &c) in text.iter().enumerate() {
        let followed_by_ws = i == last || is_blank_or_break(text[i + 1]);
        // Only the block-context rules matter: scalars are never written inside a flow collection.
        let indicator = if i == 0 {
            "#,[]{}&*!|>'\"%@`".contains(c) || ("?:-".contains(c) && followed_by_ws)
        } else {
            (c == ':' && followed_by_ws) || (c == '#' && preceded_by_ws)
        };
        block_indicators |= indicator;
        if is_break(c) {
            line_breaks = true;
        }
        // With allow_unicode=False every character outside printable ASCII (and '\n') is special.
        if !(c == '\n' || (' '..='~').contains(&c)) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_blank_or_break(c);
    }
    // Edge whitespace and breaks rule out plain; a space next to a break cannot survive line
    // folding and special characters need escapes, so those leave only double quotes.
    let edge = leading_space || leading_break || trailing_space || trailing_break;
    let needs_double = break_space || space_break || special;
    Analysis {
        empty: false,
        multiline: line_breaks,
        allow_block_plain: !(edge || needs_double || line_breaks || block_indicators),
        allow_single_quoted: !needs_double,
    }
}

/// The emitter's position state, named as in PyYAML so the rules can be checked against it.
struct Emitter {
    out: String,
    column: usize,
    /// The last character written is whitespace (or nothing was written on this line).
    whitespace: bool,
    /// Only indentation and block indicators (`-`, `?`, `:`) are on the current line.
    indention: bool,
    open_ended: bool,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
}

impl Emitter {
    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None => Some(if flow { BEST_INDENT } else { 0 }),
            Some(i) if !indentless => Some(i + BEST_INDENT),
            Some(i) => Some(i),
        };
    }

    fn pop_indent(&mut self) {
        self.indent = self
            .indents
            .pop()
            .expect("invariant: indents are pushed and popped in pairs");
    }

    fn node(&mut self, value: &YamlValue, ctx: Context) {
        match value {
            YamlValue::Seq(items) if items.is_empty() => self.empty_flow("[", "]"),
            YamlValue::Map(entries) if entries.is_empty() => self.empty_flow("{", "}"),
            YamlValue::Seq(items) => self.block_sequence(items, ctx),
            YamlValue::Map(entries) => self.block_mapping(entries, ctx),
            YamlValue::Str(s) => self.scalar(s, true, ctx),
            YamlValue::Null => self.scalar("null", false, ctx),
            YamlValue::Bool(b) => self.scalar(if *b { "true" } else { "false" }, false, ctx),
            YamlValue::Int(i) => self.scalar(&i.to_string(), false, ctx),
            YamlValue::Float(f) => self.scalar(&float_repr(*f), false, ctx),
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.pop_indent();
        self.write_indicator(close, false, false, false);
    }

    fn block_sequence(&mut self, items: &[YamlValue], ctx: Context) {
        let indentless = ctx.mapping && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Context::default());
        }
        self.pop_indent();
    }

    fn block_mapping(&mut self, entries: &[(String, YamlValue)], _ctx: Context) {
        self.increase_indent(false, false);
        let value_ctx = Context {
            mapping: true,
            ..Context::default()
        };
        for (key, value) in entries {
            self.write_indent();
            // PyYAML's 128-character limit on simple keys also counts the key's resolved tag
            // (`!!str`, five characters) although the tag is never written.
            let n = key.chars().count();
            let simple = n > 0 && n + "!!str".len() < 128 && !key.chars().any(is_break);
            if simple {
                self.scalar(
                    key,
                    true,
                    Context {
                        mapping: true,
                        simple_key: true,
                        root: false,
                    },
                );
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.scalar(key, true, value_ctx);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, value_ctx);
        }
        self.pop_indent();
    }

    /// `is_str`: a string (quoted if its plain form resolves to another type); otherwise `text` is
    /// the canonical spelling of a null, bool, int or float, which always resolves to its own type.
    fn scalar(&mut self, text: &str, is_str: bool, ctx: Context) {
        self.increase_indent(true, false);
        let chars: Vec<char> = text.chars().collect();
        let a = analyze(&chars);
        let implicit_plain = !is_str || resolve::plain_is_string(text);
        let style = if implicit_plain
            && !(ctx.simple_key && (a.empty || a.multiline))
            && a.allow_block_plain
        {
            Style::Plain
        } else if a.allow_single_quoted && !(ctx.simple_key && a.multiline) {
            Style::Single
        } else {
            Style::Double
        };
        let split = !ctx.simple_key;
        match style {
            Style::Plain => self.write_plain(&chars, split, ctx.root),
            Style::Single => self.write_single_quoted(&chars, split),
            Style::Double => self.write_double_quoted(&chars, split),
        }
        self.pop_indent();
    }

    fn write_raw(&mut self, chars: &[char]) {
        self.column += chars.len();
        self.out.extend(chars);
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        whitespace: bool,
        indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.out.push(' ');
            self.column += 1;
        }
        self.out.push_str(indicator);
        self.column += indicator.chars().count();
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
        self.open_ended = false;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            self.out
                .extend(std::iter::repeat_n(' ', indent - self.column));
            self.column = indent;
        }
    }

    fn write_line_break(&mut self) {
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
        self.out.push('\n');
    }

    fn write_plain(&mut self, text: &[char], split: bool, root: bool) {
        if root {
            self.open_ended = true;
        }
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write_raw(&[' ']);
        }
        self.whitespace = false;
        self.indention = false;
        // Plain scalars never hold breaks here (analysis forbids them), so only spaces fold.
        let (mut spaces, mut start) = (false, 0);
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write_raw(&text[start..end]);
                    }
                    start = end;
                }
            } else if ch.is_none() || ch.is_some_and(|c| c == ' ' || is_break(c)) {
                self.write_raw(&text[start..end]);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
        }
    }

    fn write_single_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks, mut start) = (false, false, 0);
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != text.len()
                    {
                        self.write_indent();
                    } else {
                        self.write_raw(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    // A break inside single quotes is written as an empty line (line folding).
                    if text[start] == '\n' {
                        self.write_line_break();
                    }
                    for _ in start..end {
                        self.write_line_break();
                    }
                    self.write_indent();
                    start = end;
                }
            } else if (ch.is_none() || ch.is_some_and(|c| c == ' ' || c == '\'' || is_break(c)))
                && start < end
            {
                self.write_raw(&text[start..end]);
                start = end;
            }
            if ch == Some('\'') {
                self.write_raw(&['\'', '\'']);
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("\"", true, false, false);
        let mut start = 0;
        for end in 0..=text.len() {
            let ch = text.get(end).copied();
            let needs_escape = |c: char| {
                matches!(
                    c,
                    '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
                ) || !(' '..='~').contains(&c)
            };
            if ch.is_none_or(needs_escape) {
                if start < end {
                    self.write_raw(&text[start..end]);
                    start = end;
                }
                if let Some(c) = ch {
                    let escaped = escape(c);
                    self.column += escaped.len();
                    self.out.push_str(&escaped);
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < text.len()
                && (ch == Some(' ') || start >= end)
                // `start` may be one past `end` right after an escape; PyYAML's arithmetic is signed.
                && self.column as isize + end as isize - start as isize > BEST_WIDTH as isize
                && split
            {
                if start < end {
                    self.write_raw(&text[start..end]);
                    start = end;
                }
                self.write_raw(&['\\']);
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if text[start] == ' ' {
                    self.write_raw(&['\\']);
                }
            }
        }
        self.write_indicator("\"", false, false, false);
    }
}

fn escape(c: char) -> String {
    let short = match c {
        '\0' => "0",
        '\u{07}' => "a",
        '\u{08}' => "b",
        '\t' => "t",
        '\n' => "n",
        '\u{0b}' => "v",
        '\u{0c}' => "f",
        '\r' => "r",
        '\u{1b}' => "e",
        '"' => "\"",
        '\\' => "\\",
        '\u{85}' => "N",
        '\u{a0}' => "_",
        '\u{2028}' => "L",
        '\u{2029}' => "P",
        _ => "",
    };
    let code = c as u32;
    if !short.is_empty() {
        format!("\\{short}")
    } else if code <= 0xff {
        format!("\\x{code:02X}")
    } else if code <= 0xffff {
        format!("\\u{code:04X}")
    } else {
        format!("\\U{code:08X}")
    }
}
