//! A JSON reader that takes only text in the one compact form serde_json writes (and `crm export` with it):
//! no whitespace, integers only (no float, no -0, within i64), strings escaped exactly as serde_json escapes
//! them (\" \\ \b \f \n \r \t, \u00xx for the other control characters, nothing else), no key repeated in an
//! object. So the text is its own re-encoding, and a value can be written again by copying its bytes. Values
//! borrow from the line: strings without escapes are not copied.

use std::borrow::Cow;
use std::collections::HashSet;

const SCANNED: usize = 32; // keys of an object compared one by one before a set takes over

pub enum J<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    Arr(Vec<Node<'a>>),
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A value and the bytes it was read from (its JSON text).
pub struct Node<'a> {
    pub raw: &'a [u8],
    pub value: J<'a>,
}

impl<'a> Node<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value { J::Str(s) => Some(s), _ => None }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self.value { J::Int(i) => Some(i), _ => None }
    }
    pub fn is_null(&self) -> bool { matches!(self.value, J::Null) }
    pub fn is_string(&self) -> bool { matches!(self.value, J::Str(_)) }
    pub fn is_i64(&self) -> bool { matches!(self.value, J::Int(_)) }
    pub fn is_boolean(&self) -> bool { matches!(self.value, J::Bool(_)) }
    pub fn as_array(&self) -> Option<&[Node<'a>]> {
        match &self.value { J::Arr(a) => Some(a), _ => None }
    }
    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, Node<'a>)]> {
        match &self.value { J::Obj(o) => Some(o), _ => None }
    }
}

/// The value `text` holds, if all of it is one value in the canonical form.
pub fn read(text: &[u8]) -> Option<Node<'_>> {
    let mut at = 0;
    let node = value(text, &mut at, 0)?;
    (at == text.len()).then_some(node)
}

fn value<'a>(t: &'a [u8], at: &mut usize, depth: u32) -> Option<Node<'a>> {
    if depth > 32 { return None; }
    let start = *at;
    let v = match *t.get(*at)? {
        b'n' => { literal(t, at, b"null")?; J::Null }
        b't' => { literal(t, at, b"true")?; J::Bool(true) }
        b'f' => { literal(t, at, b"false")?; J::Bool(false) }
        b'"' => J::Str(string(t, at)?),
        b'[' => {
            *at += 1;
            let mut items = Vec::new();
            if t.get(*at) == Some(&b']') { *at += 1; } else {
                loop {
                    items.push(value(t, at, depth + 1)?);
                    match *t.get(*at)? { b',' => *at += 1, b']' => { *at += 1; break; } _ => return None }
                }
            }
            J::Arr(items)
        }
        b'{' => {
            *at += 1;
            let mut pairs: Vec<(Cow<'a, str>, Node<'a>)> = Vec::new();
            // A repeated key is looked for among the pairs while they are few (an event's fields: ≤ 20), in a set
            // past `SCANNED`: a map of 8,000 keys cost 68 ms scanned (1M keys would have held a worker ≈ 20 min).
            let mut seen: Option<HashSet<Cow<'a, str>>> = None;
            if t.get(*at) == Some(&b'}') { *at += 1; } else {
                loop {
                    if t.get(*at) != Some(&b'"') { return None; }
                    let key = string(t, at)?;
                    let repeated = if pairs.len() < SCANNED { pairs.iter().any(|(k, _)| *k == key) } else {
                        let set = seen.get_or_insert_with(|| pairs.iter().map(|(k, _)| k.clone()).collect());
                        !set.insert(key.clone())
                    };
                    if t.get(*at) != Some(&b':') || repeated { return None; }
                    *at += 1;
                    let inner = value(t, at, depth + 1)?;
                    pairs.push((key, inner));
                    match *t.get(*at)? { b',' => *at += 1, b'}' => { *at += 1; break; } _ => return None }
                }
            }
            J::Obj(pairs)
        }
        b'-' | b'0'..=b'9' => J::Int(integer(t, at)?),
        _ => return None,
    };
    Some(Node { raw: &t[start..*at], value: v })
}

fn literal(t: &[u8], at: &mut usize, word: &[u8]) -> Option<()> {
    (t.get(*at..*at + word.len())? == word).then(|| *at += word.len())
}

fn integer(t: &[u8], at: &mut usize) -> Option<i64> {
    let start = *at;
    if t[*at] == b'-' { *at += 1; }
    let first = *at;
    while t.get(*at).is_some_and(u8::is_ascii_digit) { *at += 1; }
    let digits = &t[first..*at];
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || first > start)) { return None; } // 01, -0
    if matches!(t.get(*at), Some(b'.' | b'e' | b'E')) { return None; } // a float: not a field's value here
    std::str::from_utf8(&t[start..*at]).ok()?.parse().ok()
}

fn string<'a>(t: &'a [u8], at: &mut usize) -> Option<Cow<'a, str>> {
    *at += 1; // the opening quote
    let start = *at;
    let mut owned: Option<Vec<u8>> = None;
    let mut plain = start; // the start of the run of bytes not yet copied into `owned`
    loop {
        let c = *t.get(*at)?;
        match c {
            b'"' => break,
            0..=0x1f => return None,
            b'\\' => {
                let buffer = owned.get_or_insert_with(Vec::new);
                buffer.extend_from_slice(&t[plain..*at]);
                let escaped = *t.get(*at + 1)?;
                let (byte, length) = match escaped {
                    b'"' => (b'"', 2),
                    b'\\' => (b'\\', 2),
                    b'b' => (0x08, 2),
                    b'f' => (0x0c, 2),
                    b'n' => (b'\n', 2),
                    b'r' => (b'\r', 2),
                    b't' => (b'\t', 2),
                    b'u' => { // only a control character without a short escape, in lower-case hex
                        let hex = t.get(*at + 2..*at + 6)?;
                        if &hex[..2] != b"00" || !hex[2..].iter().all(|h| h.is_ascii_digit() || (b'a'..=b'f').contains(h)) {
                            return None;
                        }
                        let byte = u8::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()?;
                        if byte >= 0x20 || matches!(byte, 0x08 | 0x0c | b'\n' | b'\r' | b'\t') { return None; }
                        (byte, 6)
                    }
                    _ => return None,
                };
                buffer.push(byte);
                *at += length;
                plain = *at;
            }
            _ => *at += 1,
        }
    }
    let text = match owned {
        None => Cow::Borrowed(std::str::from_utf8(&t[start..*at]).ok()?),
        Some(mut buffer) => { buffer.extend_from_slice(&t[plain..*at]); Cow::Owned(String::from_utf8(buffer).ok()?) }
    };
    *at += 1; // the closing quote
    Some(text)
}
