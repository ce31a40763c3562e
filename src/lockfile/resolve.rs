//! What a plain (unquoted) scalar means under PyYAML's YAML 1.1 implicit resolvers.
//!
//! One table serves both directions: the emitter quotes a string exactly when its plain spelling
//! would read back as something else, and the reader types plain scalars the way `safe_load` does.
//! The matchers mirror the regular expressions of PyYAML's `resolver.py`, including Python's `$`,
//! which also matches before one final newline.

use super::YamlValue;

/// The tag PyYAML resolves a plain scalar to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlainKind {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    /// `<<`, the merge key.
    Merge,
    /// `=`, the "value" key.
    Value,
    /// `!`, `&`, `*` (PyYAML registers them although no plain scalar can be spelled so).
    Yaml,
    Str,
}

pub(crate) fn classify(text: &str) -> PlainKind {
    let kind = classify_exact(text.as_bytes());
    if kind == PlainKind::Str {
        if let Some(stripped) = text.strip_suffix('\n') {
            return classify_exact(stripped.as_bytes());
        }
    }
    kind
}

/// True when `text` written without quotes reads back as the same string.
pub(crate) fn plain_is_string(text: &str) -> bool {
    classify(text) == PlainKind::Str
}

fn classify_exact(s: &[u8]) -> PlainKind {
    if is_bool(s) {
        PlainKind::Bool
    } else if is_float(s) {
        PlainKind::Float
    } else if is_int(s) {
        PlainKind::Int
    } else if s == b"<<" {
        PlainKind::Merge
    } else if matches!(s, b"" | b"~" | b"null" | b"Null" | b"NULL") {
        PlainKind::Null
    } else if is_timestamp(s) {
        PlainKind::Timestamp
    } else if s == b"=" {
        PlainKind::Value
    } else if matches!(s, b"!" | b"&" | b"*") {
        PlainKind::Yaml
    } else {
        PlainKind::Str
    }
}

fn is_bool(s: &[u8]) -> bool {
    matches!(
        s,
        b"yes"
            | b"Yes"
            | b"YES"
            | b"no"
            | b"No"
            | b"NO"
            | b"true"
            | b"True"
            | b"TRUE"
            | b"false"
            | b"False"
            | b"FALSE"
            | b"on"
            | b"On"
            | b"ON"
            | b"off"
            | b"Off"
            | b"OFF"
    )
}

/// Length of the longest prefix of `s` made of bytes accepted by `f`.
fn span(s: &[u8], f: impl Fn(u8) -> bool) -> usize {
    s.iter().take_while(|&&b| f(b)).count()
}

fn strip_sign(s: &[u8]) -> &[u8] {
    match s.first() {
        Some(b'-' | b'+') => &s[1..],
        _ => s,
    }
}

fn digit_or_underscore(b: u8) -> bool {
    b.is_ascii_digit() || b == b'_'
}

/// `(?::[0-5]?[0-9])+` followed by the end of `s` or by `rest_ok`. Returns the unconsumed tail.
fn sexagesimal_tail(mut s: &[u8]) -> Option<&[u8]> {
    let mut segments = 0;
    while let Some(rest) = s.strip_prefix(b":") {
        let n = span(rest, |b| b.is_ascii_digit());
        // A regex segment is one digit, or two with the first in 0-5; a longer run cannot be
        // followed by the `:`, `.` or end that the patterns require.
        let ok = n == 1 || (n == 2 && rest[0] <= b'5');
        if !ok {
            return None;
        }
        s = &rest[n..];
        segments += 1;
    }
    (segments > 0).then_some(s)
}

/// `[eE][-+][0-9]+` or nothing, then the end.
fn exponent_then_end(s: &[u8]) -> bool {
    match s.first() {
        None => true,
        Some(b'e' | b'E') => {
            let rest = &s[1..];
            if !matches!(rest.first(), Some(b'-' | b'+')) {
                return false;
            }
            let digits = &rest[1..];
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

fn is_float(s: &[u8]) -> bool {
    let unsigned = strip_sign(s);
    let signed = unsigned.len() != s.len();
    // [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?
    if unsigned.first().is_some_and(u8::is_ascii_digit) {
        let n = span(unsigned, digit_or_underscore);
        let rest = &unsigned[n..];
        if let Some(frac) = rest.strip_prefix(b".") {
            let m = span(frac, digit_or_underscore);
            if exponent_then_end(&frac[m..]) {
                return true;
            }
        }
        // [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        if let Some(tail) = sexagesimal_tail(rest) {
            if let Some(frac) = tail.strip_prefix(b".") {
                if frac.iter().all(|&b| digit_or_underscore(b)) {
                    return true;
                }
            }
        }
        return false;
    }
    // [-+]?\.(?:inf|Inf|INF)
    if matches!(unsigned, b".inf" | b".Inf" | b".INF") {
        return true;
    }
    if signed {
        return false;
    }
    // \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?   and   \.(?:nan|NaN|NAN)
    if let Some(frac) = s.strip_prefix(b".") {
        if frac.first().is_some_and(u8::is_ascii_digit) {
            let m = span(frac, digit_or_underscore);
            return exponent_then_end(&frac[m..]);
        }
        return matches!(frac, b"nan" | b"NaN" | b"NAN");
    }
    false
}

fn is_int(s: &[u8]) -> bool {
    let u = strip_sign(s);
    let all = |t: &[u8], f: fn(u8) -> bool| !t.is_empty() && t.iter().all(|&b| f(b));
    if let Some(bits) = u.strip_prefix(b"0b") {
        return all(bits, |b| matches!(b, b'0' | b'1' | b'_'));
    }
    if let Some(hex) = u.strip_prefix(b"0x") {
        return all(hex, |b| b.is_ascii_hexdigit() || b == b'_');
    }
    if let Some(oct) = u.strip_prefix(b"0") {
        return oct.is_empty() || all(oct, |b| matches!(b, b'0'..=b'7' | b'_'));
    }
    if !u.first().is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return false;
    }
    let n = span(u, digit_or_underscore);
    let rest = &u[n..];
    rest.is_empty() || sexagesimal_tail(rest).is_some_and(<[u8]>::is_empty)
}

fn is_timestamp(s: &[u8]) -> bool {
    let digits = |t: &[u8], lo: usize, hi: usize| -> Option<usize> {
        let n = span(t, |b| b.is_ascii_digit());
        (lo..=hi).contains(&n).then_some(n)
    };
    // [0-9]{4}-[0-9]{2}-[0-9]{2}
    if s.len() == 10
        && digits(s, 4, 4) == Some(4)
        && s[4] == b'-'
        && digits(&s[5..], 2, 2) == Some(2)
        && s[7] == b'-'
        && digits(&s[8..], 2, 2) == Some(2)
    {
        return true;
    }
    // [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
    //   (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?
    let mut t = s;
    let eat_digits = |t: &mut &[u8], lo, hi| -> bool {
        match digits(t, lo, hi) {
            Some(n) => {
                *t = &t[n..];
                true
            }
            None => false,
        }
    };
    let eat = |t: &mut &[u8], c: u8| -> bool {
        match t.split_first() {
            Some((&b, rest)) if b == c => {
                *t = rest;
                true
            }
            _ => false,
        }
    };
    if !(eat_digits(&mut t, 4, 4)
        && eat(&mut t, b'-')
        && eat_digits(&mut t, 1, 2)
        && eat(&mut t, b'-'))
    {
        return false;
    }
    if !eat_digits(&mut t, 1, 2) {
        return false;
    }
    match t.first() {
        Some(b'T' | b't') => t = &t[1..],
        Some(b' ' | b'\t') => t = &t[span(t, |b| b == b' ' || b == b'\t')..],
        _ => return false,
    }
    if !(eat_digits(&mut t, 1, 2)
        && eat(&mut t, b':')
        && eat_digits(&mut t, 2, 2)
        && eat(&mut t, b':'))
    {
        return false;
    }
    if !eat_digits(&mut t, 2, 2) {
        return false;
    }
    if eat(&mut t, b'.') {
        t = &t[span(t, |b| b.is_ascii_digit())..];
    }
    t = &t[span(t, |b| b == b' ' || b == b'\t')..];
    if t.is_empty() || t == b"Z" {
        return true;
    }
    // The whitespace before the zone is optional and may be empty, so also accept a zone here.
    if matches!(t.first(), Some(b'-' | b'+')) {
        let mut z = &t[1..];
        if !eat_digits(&mut z, 1, 2) {
            return false;
        }
        if z.is_empty() {
            return true;
        }
        return eat(&mut z, b':') && digits(z, 2, 2) == Some(2) && z.len() == 2;
    }
    false
}

/// The value PyYAML's `SafeConstructor` builds for a plain scalar. Timestamps, `<<` and `=` stay
/// strings: lock and `.pvt` data never hold dates, and JSON has no type for them.
pub(crate) fn construct_plain(text: &str) -> Result<YamlValue, String> {
    Ok(match classify(text) {
        PlainKind::Null => YamlValue::Null,
        PlainKind::Bool => YamlValue::Bool(matches!(
            text.to_ascii_lowercase().trim_end(),
            "yes" | "true" | "on"
        )),
        PlainKind::Int => construct_int(text)?,
        PlainKind::Float => YamlValue::Float(construct_float(text)?),
        _ => YamlValue::Str(text.to_owned()),
    })
}

fn split_sign(text: &str) -> (bool, String) {
    let cleaned: String = text
        .trim_end_matches('\n')
        .chars()
        .filter(|&c| c != '_')
        .collect();
    match cleaned.as_bytes().first() {
        Some(b'-') => (true, cleaned[1..].to_owned()),
        Some(b'+') => (false, cleaned[1..].to_owned()),
        _ => (false, cleaned),
    }
}

fn construct_int(text: &str) -> Result<YamlValue, String> {
    let (negative, v) = split_sign(text);
    let bad = || format!("invalid integer `{text}`");
    let magnitude: i128 = if v == "0" {
        0
    } else if let Some(bits) = v.strip_prefix("0b") {
        i128::from_str_radix(bits, 2).map_err(|_| bad())?
    } else if let Some(hex) = v.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).map_err(|_| bad())?
    } else if v.starts_with('0') {
        i128::from_str_radix(&v, 8).map_err(|_| bad())?
    } else if v.contains(':') {
        let mut total: i128 = 0;
        for part in v.split(':') {
            let d: i128 = part.parse().map_err(|_| bad())?;
            total = total
                .checked_mul(60)
                .and_then(|t| t.checked_add(d))
                .ok_or_else(bad)?;
        }
        total
    } else {
        match v.parse::<i128>() {
            Ok(i) => i,
            // Python ints are unbounded; keep what JSON could hold anyway.
            Err(_) => {
                let f: f64 = v.parse().map_err(|_| bad())?;
                return Ok(YamlValue::Float(if negative { -f } else { f }));
            }
        }
    };
    Ok(YamlValue::Int(if negative {
        -magnitude
    } else {
        magnitude
    }))
}

fn construct_float(text: &str) -> Result<f64, String> {
    let (negative, v) = split_sign(text);
    let v = v.to_ascii_lowercase();
    let bad = || format!("invalid float `{text}`");
    let magnitude = if v == ".inf" {
        f64::INFINITY
    } else if v == ".nan" {
        f64::NAN
    } else if v.contains(':') {
        let mut total = 0.0;
        for part in v.split(':') {
            total = total * 60.0 + part.parse::<f64>().map_err(|_| bad())?;
        }
        total
    } else {
        v.parse::<f64>().map_err(|_| bad())?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_pyyaml_resolver() {
        use PlainKind::*;
        let cases: &[(&str, PlainKind)] = &[
            ("yes", Bool),
            ("Off", Bool),
            ("oN", Str),
            ("1234567890123456", Int),
            ("0123456701234567", Int),
            ("0800000000000000", Str),
            ("12e4567890123456", Str),
            ("1e3", Str),
            ("1.0e+3", Float),
            ("1.0e3", Str),
            ("1.", Float),
            (".5", Float),
            ("+.5", Str),
            ("-.inf", Float),
            ("-.nan", Str),
            ("0x1F", Int),
            ("0o17", Str),
            ("0b101", Int),
            ("1_000", Int),
            ("1:30", Int),
            ("1:60", Str),
            ("1:30.5", Float),
            ("0:30", Str),
            ("2001-12-14", Timestamp),
            ("2001-12-14t21:59:43.10-05:00", Timestamp),
            ("2001-12-14 21:59:43.10 -5", Timestamp),
            ("2001-1-1", Str),
            ("~", Null),
            ("", Null),
            ("null\n", Null),
            ("<<", Merge),
            ("=", Value),
            ("abc", Str),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), *want, "{text:?}");
        }
    }

    #[test]
    fn constructs_like_safe_load() {
        assert_eq!(construct_plain("0x1_F").unwrap(), YamlValue::Int(31));
        assert_eq!(construct_plain("-017").unwrap(), YamlValue::Int(-15));
        assert_eq!(construct_plain("1:30").unwrap(), YamlValue::Int(90));
        assert_eq!(construct_plain("1:30.5").unwrap(), YamlValue::Float(90.5));
        assert_eq!(
            construct_plain("-.INF").unwrap(),
            YamlValue::Float(f64::NEG_INFINITY)
        );
        assert_eq!(construct_plain("1.e+2").unwrap(), YamlValue::Float(100.0));
        assert_eq!(construct_plain("NO").unwrap(), YamlValue::Bool(false));
        assert_eq!(construct_plain("1e3").unwrap(), YamlValue::str("1e3"));
    }
}
