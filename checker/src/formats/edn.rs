//! A small EDN reader: the data language Jepsen and Knossos write histories in.
//!
//! This module owns the *language* (literals, collections, tags, comments), not what a
//! history means: `formats/jepsen.rs` turns parsed forms into events. It is hand-written
//! rather than borrowed because histories are large and people edit them by hand: the
//! parser works over bytes in one pass, and every error says the line and column where
//! the input went wrong (an unterminated vector names where it was opened).
//!
//! Supported: `nil`, `true`/`false`, integers (with an optional `N` suffix, and Clojure's
//! `0x` hexadecimal, which Jepsen uses for object hashes; literals that
//! do not fit in 64 bits are an error, because rounding a value could change a verdict),
//! floats (with an optional `M` suffix, read as `f64`), `##Inf`/`##-Inf`/`##NaN`, strings
//! with escapes (`\t \r \n \b \f \\ \" \uXXXX`), characters (`\a`, `\newline`, `\space`,
//! `\tab`, `\return`, `\backspace`, `\formfeed`, `\uXXXX`), keywords, symbols, lists,
//! vectors, maps, sets, tagged literals (`#inst "…"`, `#uuid "…"`, `#object[…]`, record
//! literals like `#jepsen.history.Op{…}`: the tag is kept beside the inner value),
//! `#_` discards, `;` comments, and commas as whitespace.
//!
//! [`Edn::to_json`] converts a form to the `serde_json::Value` the checkers use: keywords
//! and symbols become strings without the colon, `nil` becomes `null`, lists and vectors
//! become arrays, sets become arrays in a deterministic (sorted) order, maps become objects
//! with keys rendered as strings, and tagged literals become their inner value.

use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;

/// Deepest nesting accepted, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 256;

/// One EDN form.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    /// Always within `i64::MIN..=u64::MAX` (the parser rejects anything wider).
    Int(i128),
    Float(f64),
    Str(String),
    Char(char),
    /// Without the leading colon; a namespaced keyword keeps its `ns/` prefix.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    /// Entries in the order written (EDN maps are unordered; order only matters for
    /// printing back what the user wrote).
    Map(Vec<(Edn, Edn)>),
    Set(Vec<Edn>),
    /// `#tag value`: the tag without `#`, and the value it applies to.
    Tagged(String, Box<Edn>),
}

/// A 1-based place in the input. Columns count characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Malformed EDN, with where it went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct EdnError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

impl Edn {
    /// What kind of form this is, for error messages ("expected a map; got a vector").
    pub fn kind_name(&self) -> &'static str {
        match self {
            Edn::Nil => "nil",
            Edn::Bool(_) => "a boolean",
            Edn::Int(_) => "an integer",
            Edn::Float(_) => "a float",
            Edn::Str(_) => "a string",
            Edn::Char(_) => "a character",
            Edn::Keyword(_) => "a keyword",
            Edn::Symbol(_) => "a symbol",
            Edn::List(_) => "a list",
            Edn::Vector(_) => "a vector",
            Edn::Map(_) => "a map",
            Edn::Set(_) => "a set",
            Edn::Tagged(..) => "a tagged literal",
        }
    }

    /// The value under keyword `:name` in a map (the first, if written twice).
    pub fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(n) if n == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts to JSON as described in the module documentation.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => int_to_json(*i),
            Edn::Float(x) => match Number::from_f64(*x) {
                Some(n) => Value::Number(n),
                // JSON has no infinities or NaN; keep them distinguishable as text.
                None => Value::String(self.to_string()),
            },
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::List(items) | Edn::Vector(items) => {
                Value::Array(items.iter().map(Edn::to_json).collect())
            }
            Edn::Set(items) => {
                let mut values: Vec<Value> = items.iter().map(Edn::to_json).collect();
                values.sort_by(compare_json);
                Value::Array(values)
            }
            Edn::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.to_key_string(), v.to_json());
                }
                Value::Object(map)
            }
            Edn::Tagged(_, inner) => inner.to_json(),
        }
    }

    /// How a map key is rendered as a JSON object key: keywords, symbols and strings by
    /// name, anything else as its EDN text.
    pub fn to_key_string(&self) -> String {
        match self {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            Edn::Tagged(_, inner) => inner.to_key_string(),
            other => other.to_string(),
        }
    }
}

fn int_to_json(i: i128) -> Value {
    if let Ok(v) = i64::try_from(i) {
        Value::from(v)
    } else if let Ok(v) = u64::try_from(i) {
        Value::from(v)
    } else {
        // Unreachable for parsed input (the parser bounds integers); keep it exact anyway.
        Value::String(i.to_string())
    }
}

fn json_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A total order on JSON values, used to give sets a deterministic order.
pub fn compare_json(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (l, r) in x.iter().zip(y) {
                let o = compare_json(l, r);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(_), Value::Object(_)) => a.to_string().cmp(&b.to_string()),
        _ => json_rank(a).cmp(&json_rank(b)),
    }
}

/// Prints EDN text that reads back as the same form.
impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) if x.is_nan() => f.write_str("##NaN"),
            Edn::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "##Inf" } else { "##-Inf" })
            }
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c if c.is_control() => write!(f, "\\u{:04x}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Edn::Char(c) => match c {
                '\n' => f.write_str("\\newline"),
                ' ' => f.write_str("\\space"),
                '\t' => f.write_str("\\tab"),
                '\r' => f.write_str("\\return"),
                '\u{8}' => f.write_str("\\backspace"),
                '\u{c}' => f.write_str("\\formfeed"),
                c if c.is_control() => write!(f, "\\u{:04x}", *c as u32),
                c => write!(f, "\\{c}"),
            },
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(items) => seq(f, "(", items, ")"),
            Edn::Vector(items) => seq(f, "[", items, "]"),
            Edn::Set(items) => seq(f, "#{", items, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => write!(f, "#{tag} {inner}"),
        }
    }
}

/// Parses exactly one form from `text` (surrounding whitespace and comments allowed).
pub fn parse_one(text: &str) -> Result<Edn, EdnError> {
    parse_one_at(text, 0, 1)
}

/// Parses exactly one form from `text[start..]`, for a value embedded in a longer line:
/// positions are reported within the whole of `text`, whose first line is `first_line`.
pub fn parse_one_at(text: &str, start: usize, first_line: usize) -> Result<Edn, EdnError> {
    let mut parser = Parser::new(text);
    parser.line = first_line;
    if text.is_char_boundary(start) {
        parser.pos = start;
        if let Some(newline) = text[..start].rfind('\n') {
            parser.line += text[..start].matches('\n').count();
            parser.line_start = newline + 1;
        }
    }
    let Some((_, form)) = parser.next_form()? else {
        return Err(parser.error_here("expected a value, found nothing"));
    };
    parser.skip_ignorable()?;
    if parser.peek().is_some() {
        return Err(parser.error_here("expected the end of the value, found more input"));
    }
    Ok(form)
}

/// Parses every top-level form of `text`.
pub fn parse_all(text: &str) -> Result<Vec<Edn>, EdnError> {
    let mut parser = Parser::new(text);
    let mut forms = Vec::new();
    while let Some((_, form)) = parser.next_form()? {
        forms.push(form);
    }
    Ok(forms)
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'\x0c')
}

fn is_delimiter(b: u8) -> bool {
    is_whitespace(b) || matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';')
}

fn closer_name(close: u8) -> &'static str {
    match close {
        b')' => "list",
        b']' => "vector",
        _ => "set",
    }
}

/// A one-pass reader over EDN text that knows its line and column.
///
/// Besides whole forms ([`Parser::next_form`]), it can stream the elements of a top-level
/// vector one at a time ([`Parser::enter_sequence`], [`Parser::next_in_sequence`]), so a
/// history of millions of operations is never held as one giant vector, and each element
/// keeps the position it started at.
pub struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    depth: usize,
    /// Sequences opened by `enter_sequence`: the closing byte and where it was opened.
    streaming: Vec<(u8, Mark)>,
    /// (line start, byte position, characters between them) of the last column computed.
    column_cache: Cell<(usize, usize, usize)>,
}

/// A place in the input, cheap to take; turned into a [`Position`] only when reported.
#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Parser<'a> {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            depth: 0,
            streaming: Vec::new(),
            column_cache: Cell::new((0, 0, 0)),
        }
    }

    /// Where the parser is now.
    pub fn position(&self) -> Position {
        self.position_of(self.mark())
    }

    fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            line_start: self.line_start,
        }
    }

    /// Turns a mark into a line and a column in characters. Counting characters from the
    /// line start every time would be quadratic on a history written as one long line,
    /// so the count continues from the last position asked for when it can.
    fn position_of(&self, mark: Mark) -> Position {
        let (cached_start, cached_pos, cached_chars) = self.column_cache.get();
        let (from, before) = if cached_start == mark.line_start && cached_pos <= mark.pos {
            (cached_pos, cached_chars)
        } else {
            (mark.line_start, 0)
        };
        let from = from.min(mark.pos);
        let chars = before
            + self
                .text
                .get(from..mark.pos)
                .map_or(mark.pos - from, |s| s.chars().count());
        self.column_cache.set((mark.line_start, mark.pos, chars));
        Position {
            line: mark.line,
            column: chars + 1,
        }
    }

    fn error_at(&self, at: Mark, reason: impl Into<String>) -> EdnError {
        let at = self.position_of(at);
        EdnError {
            line: at.line,
            column: at.column,
            reason: reason.into(),
        }
    }

    fn error_here(&self, reason: impl Into<String>) -> EdnError {
        self.error_at(self.mark(), reason)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    /// Advances over one byte, keeping the line count.
    fn bump(&mut self) {
        if self.bytes.get(self.pos) == Some(&b'\n') {
            self.line += 1;
            self.line_start = self.pos + 1;
        }
        self.pos += 1;
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    pub fn skip_ignorable(&mut self) -> Result<(), EdnError> {
        loop {
            match self.peek() {
                Some(b) if is_whitespace(b) => self.bump(),
                Some(b';') => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                Some(b'#') if self.peek_at(1) == Some(b'_') => {
                    let at = self.mark();
                    self.pos += 2;
                    // `#_#_#_…` nests: count it like a collection so it cannot overflow
                    // the stack.
                    if self.depth >= MAX_DEPTH {
                        return Err(
                            self.error_at(at, format!("nesting deeper than {MAX_DEPTH} levels"))
                        );
                    }
                    self.depth += 1;
                    let skipped = self.skip_ignorable();
                    self.depth -= 1;
                    skipped?;
                    match self.peek() {
                        None | Some(b')' | b']' | b'}') => {
                            return Err(
                                self.error_at(at, "`#_` must be followed by a form to discard")
                            );
                        }
                        Some(_) => {
                            self.parse_form()?;
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next top-level form and where it starts, or `None` at the end of the input.
    pub fn next_form(&mut self) -> Result<Option<(Position, Edn)>, EdnError> {
        self.skip_ignorable()?;
        if self.peek().is_none() {
            return Ok(None);
        }
        let at = self.mark();
        Ok(Some((self.position_of(at), self.parse_form()?)))
    }

    /// If the next form is a vector or list, consumes its opening bracket (so its elements
    /// can be read one by one with [`Parser::next_in_sequence`]) and returns where it
    /// starts; otherwise consumes nothing and returns `None`.
    pub fn enter_sequence(&mut self) -> Result<Option<Position>, EdnError> {
        self.skip_ignorable()?;
        let close = match self.peek() {
            Some(b'[') => b']',
            Some(b'(') => b')',
            _ => return Ok(None),
        };
        let at = self.mark();
        self.bump();
        self.streaming.push((close, at));
        Ok(Some(self.position_of(at)))
    }

    /// The next element of the sequence opened by [`Parser::enter_sequence`], or `None`
    /// once its closing bracket has been consumed.
    pub fn next_in_sequence(&mut self) -> Result<Option<(Position, Edn)>, EdnError> {
        let Some(&(close, opened)) = self.streaming.last() else {
            return self.next_form();
        };
        self.skip_ignorable()?;
        match self.peek() {
            None => Err(self.error_at(
                opened,
                format!(
                    "unterminated {}: the `{}` opened here is never closed",
                    closer_name(close),
                    opener(close)
                ),
            )),
            Some(b) if b == close => {
                self.bump();
                self.streaming.pop();
                Ok(None)
            }
            Some(b @ (b')' | b']' | b'}')) => {
                Err(self.mismatched(b, close, opened, closer_name(close)))
            }
            Some(_) => {
                let at = self.mark();
                Ok(Some((self.position_of(at), self.parse_form()?)))
            }
        }
    }

    fn mismatched(&self, found: u8, close: u8, opened: Mark, kind: &str) -> EdnError {
        self.error_here(format!(
            "mismatched `{}`: expected `{}` to close the {} opened at {}",
            found as char,
            close as char,
            kind,
            self.position_of(opened)
        ))
    }

    /// Parses one form; the cursor must be at its first byte or at ignorable input.
    fn parse_form(&mut self) -> Result<Edn, EdnError> {
        self.skip_ignorable()?;
        let at = self.mark();
        let Some(b) = self.peek() else {
            return Err(self.error_here("expected a value, found the end of the input"));
        };
        match b {
            b'(' => Ok(Edn::List(self.parse_collection(b')', at)?)),
            b'[' => Ok(Edn::Vector(self.parse_collection(b']', at)?)),
            b'{' => self.parse_map(at).map(Edn::Map),
            b'"' => self.parse_string(at).map(Edn::Str),
            b'\\' => self.parse_char(at).map(Edn::Char),
            b':' => self.parse_keyword(at),
            b'#' => self.parse_dispatch(at),
            b')' | b']' | b'}' => {
                Err(self.error_here(format!("unmatched `{}`: nothing open to close", b as char)))
            }
            _ => self.parse_token(at),
        }
    }

    /// Reads a map's entries straight into pairs (no intermediate list of forms).
    fn parse_map(&mut self, opened: Mark) -> Result<Vec<(Edn, Edn)>, EdnError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_here(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        self.bump(); // `{`
        let mut entries = Vec::new();
        let mut key: Option<Edn> = None;
        loop {
            self.skip_ignorable()?;
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        opened,
                        "unterminated map: the `{` opened here is never closed",
                    ));
                }
                Some(b'}') => {
                    if key.is_some() {
                        return Err(self.error_at(
                            opened,
                            format!(
                                "the map opened here has an odd number of forms ({}): a key has no value",
                                entries.len() * 2 + 1
                            ),
                        ));
                    }
                    self.bump();
                    self.depth -= 1;
                    return Ok(entries);
                }
                Some(b @ (b')' | b']')) => return Err(self.mismatched(b, b'}', opened, "map")),
                Some(_) => {
                    let form = self.parse_form()?;
                    match key.take() {
                        None => key = Some(form),
                        Some(k) => entries.push((k, form)),
                    }
                }
            }
        }
    }

    fn parse_collection(&mut self, close: u8, opened: Mark) -> Result<Vec<Edn>, EdnError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_here(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        self.bump(); // the opening bracket (or the `{` of `#{`)
        let mut items = Vec::new();
        loop {
            self.skip_ignorable()?;
            match self.peek() {
                None => {
                    self.depth -= 1;
                    return Err(self.error_at(
                        opened,
                        format!(
                            "unterminated {}: the `{}` opened here is never closed",
                            closer_name(close),
                            opener(close)
                        ),
                    ));
                }
                Some(b) if b == close => {
                    self.bump();
                    self.depth -= 1;
                    return Ok(items);
                }
                Some(b @ (b')' | b']' | b'}')) => {
                    self.depth -= 1;
                    return Err(self.mismatched(b, close, opened, closer_name(close)));
                }
                Some(_) => items.push(self.parse_form()?),
            }
        }
    }

    fn parse_string(&mut self, opened: Mark) -> Result<String, EdnError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b == b'\n' {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        opened,
                        "unterminated string: the `\"` opened here is never closed",
                    ))
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\n') => {
                    out.push('\n');
                    self.bump();
                }
                Some(_) => {
                    let escape_at = self.mark();
                    self.pos += 1; // backslash
                    let Some(e) = self.peek() else {
                        return Err(self.error_at(
                            opened,
                            "unterminated string: the `\"` opened here is never closed",
                        ));
                    };
                    self.pos += 1;
                    match e {
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'n' => out.push('\n'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'\\' => out.push('\\'),
                        b'"' => out.push('"'),
                        b'/' => out.push('/'),
                        b'u' => out.push(self.parse_unicode_escape(escape_at)?),
                        _ => {
                            let shown = self.text[self.pos - 1..].chars().next().unwrap_or('?');
                            return Err(self.error_at(
                                escape_at,
                                format!("unknown escape `\\{shown}` in a string (EDN has \\t \\r \\n \\b \\f \\\\ \\\" \\uXXXX)"),
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Reads the 4 hex digits after `\u` (and a low surrogate after a high one).
    fn parse_unicode_escape(&mut self, at: Mark) -> Result<char, EdnError> {
        let first = self.read_hex4(at)?;
        if (0xD800..0xDC00).contains(&first) {
            if self.peek() == Some(b'\\') && self.peek_at(1) == Some(b'u') {
                self.pos += 2;
                let second = self.read_hex4(at)?;
                if (0xDC00..0xE000).contains(&second) {
                    let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    if let Some(c) = char::from_u32(combined) {
                        return Ok(c);
                    }
                }
            }
            return Err(self.error_at(at, "unpaired surrogate in a `\\u` escape"));
        }
        char::from_u32(first)
            .ok_or_else(|| self.error_at(at, format!("`\\u{first:04x}` is not a character")))
    }

    fn read_hex4(&mut self, at: Mark) -> Result<u32, EdnError> {
        let digits = self.bytes.get(self.pos..self.pos + 4);
        let value = digits
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match value {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => Err(self.error_at(at, "`\\u` must be followed by 4 hex digits")),
        }
    }

    fn parse_char(&mut self, at: Mark) -> Result<char, EdnError> {
        self.pos += 1; // backslash
        let Some(first) = self.text[self.pos..].chars().next() else {
            return Err(self.error_at(at, "a `\\` character literal needs a character"));
        };
        let start = self.pos;
        self.pos += first.len_utf8();
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        let name = &self.text[start..self.pos];
        if name.chars().count() == 1 {
            if first == '\n' {
                // a backslash right before a line break: keep the line count right
                self.line += 1;
                self.line_start = self.pos;
            }
            return Ok(first);
        }
        let named = match name {
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "backspace" => Some('\u{8}'),
            "formfeed" => Some('\u{c}'),
            _ => None,
        };
        if let Some(c) = named {
            return Ok(c);
        }
        if let Some(hex) = name.strip_prefix('u') {
            if hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                if let Some(c) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                    return Ok(c);
                }
            }
        }
        Err(self.error_at(at, format!("unknown character literal `\\{name}`")))
    }

    /// Reads a run of non-delimiter bytes.
    fn read_token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn parse_keyword(&mut self, at: Mark) -> Result<Edn, EdnError> {
        self.pos += 1; // colon
        let name = self.read_token();
        if name.is_empty() {
            return Err(self.error_at(at, "a lone `:` is not a keyword"));
        }
        if name.starts_with(':') {
            return Err(self.error_at(
                at,
                format!("`:{name}` is an auto-resolved keyword, which EDN does not have"),
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|&c| !is_symbol_char(c) && c != '#' && c != ':')
        {
            return Err(self.error_at(at, format!("`{bad}` cannot appear in keyword `:{name}`")));
        }
        Ok(Edn::Keyword(name.to_string()))
    }

    fn parse_dispatch(&mut self, at: Mark) -> Result<Edn, EdnError> {
        match self.peek_at(1) {
            Some(b'{') => {
                self.pos += 1; // `#`; parse_collection consumes the `{`
                Ok(Edn::Set(self.parse_collection(b'}', at)?))
            }
            Some(b'#') => {
                self.pos += 2;
                match self.read_token() {
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    other => Err(self.error_at(
                        at,
                        format!(
                            "unknown symbolic value `##{other}` (EDN has ##Inf, ##-Inf, ##NaN)"
                        ),
                    )),
                }
            }
            Some(b) if b.is_ascii_alphabetic() => {
                self.pos += 1;
                // A record literal's tag runs straight into its map: `#my.Rec{...}`.
                let tag = self.read_token();
                self.skip_ignorable()?;
                match self.peek() {
                    None | Some(b')' | b']' | b'}') => {
                        Err(self.error_at(at, format!("tag `#{tag}` has no value after it")))
                    }
                    Some(_) => {
                        if self.depth >= MAX_DEPTH {
                            return Err(
                                self.error_here(format!("nesting deeper than {MAX_DEPTH} levels"))
                            );
                        }
                        self.depth += 1;
                        let inner = self.parse_form();
                        self.depth -= 1;
                        Ok(Edn::Tagged(tag.to_string(), Box::new(inner?)))
                    }
                }
            }
            _ => {
                let shown = self.text[self.pos..].chars().nth(1).map_or_else(
                    || "`#` at the end of the input".to_string(),
                    |c| format!("`#{c}`"),
                );
                Err(self.error_at(
                    at,
                    format!(
                        "{shown} is not EDN (`#` starts only sets `#{{`, discards `#_`, `##Inf`/`##NaN` and tagged literals like `#inst`)"
                    ),
                ))
            }
        }
    }

    /// Numbers, `nil`, `true`, `false` and symbols.
    fn parse_token(&mut self, at: Mark) -> Result<Edn, EdnError> {
        let token = self.read_token();
        let Some(first) = token.chars().next() else {
            // Cannot happen: parse_form only gets here on a non-delimiter byte.
            return Err(self.error_at(at, "expected a value"));
        };
        let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
        if unsigned.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return parse_number(token).map_err(|reason| self.error_at(at, reason));
        }
        match token {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        if !(first.is_alphabetic() || ".*+!-_?$%&=<>/".contains(first)) {
            return Err(self.error_at(at, format!("unexpected character `{first}`")));
        }
        if let Some(bad) = token
            .chars()
            .find(|&c| !is_symbol_char(c) && c != '#' && c != ':')
        {
            return Err(self.error_at(at, format!("`{bad}` cannot appear in symbol `{token}`")));
        }
        Ok(Edn::Symbol(token.to_string()))
    }
}

fn opener(close: u8) -> char {
    match close {
        b')' => '(',
        b']' => '[',
        _ => '{',
    }
}

fn is_symbol_char(c: char) -> bool {
    c.is_alphanumeric() || ".*+!-_?$%&=<>/'".contains(c)
}

/// Parses an integer (`42`, `-7`, `12N`) or a float (`1.5`, `1e3`, `2.5M`).
fn parse_number(token: &str) -> Result<Edn, String> {
    let (sign, digits) = match token.as_bytes().first() {
        Some(b'-') => (-1, &token[1..]),
        Some(b'+') => (1, &token[1..]),
        _ => (1, token),
    };
    let int_digits = digits.strip_suffix('N').unwrap_or(digits);
    // Hexadecimal is Clojure rather than EDN, but Jepsen prints object hashes that way
    // (`#object[java.lang.Exception 0x1f2e3d "…"]`).
    let hex = int_digits
        .strip_prefix("0x")
        .or_else(|| int_digits.strip_prefix("0X"))
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let decimal = !int_digits.is_empty() && int_digits.bytes().all(|b| b.is_ascii_digit());
    if hex.is_some() || decimal {
        let magnitude: Option<i128> = match hex {
            Some(h) => i128::from_str_radix(h, 16).ok(),
            None => int_digits.parse().ok(),
        };
        let value = magnitude.map(|m| m * sign);
        return match value {
            Some(v) if v >= i128::from(i64::MIN) && v <= i128::from(u64::MAX) => Ok(Edn::Int(v)),
            _ => Err(format!(
                "integer `{token}` does not fit in 64 bits (splitbrain keeps values exact rather than rounding them)"
            )),
        };
    }
    if digits.contains('/') {
        return Err(format!("`{token}` is a ratio, which EDN does not have"));
    }
    let float_text = token.strip_suffix('M').unwrap_or(token);
    if is_float_syntax(float_text) {
        if let Ok(x) = float_text.parse::<f64>() {
            return Ok(Edn::Float(x));
        }
    }
    Err(format!("`{token}` is not a number"))
}

/// `[+-]? digits ( . digits* )? ( [eE] [+-]? digits )?` with at least a fraction or
/// an exponent (plain integers are handled before).
fn is_float_syntax(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    let mut fraction_or_exponent = false;
    if b.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i);
        fraction_or_exponent = true;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
        fraction_or_exponent = true;
    }
    fraction_or_exponent && i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Edn {
        match parse_one(text) {
            Ok(form) => form,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn fails(text: &str) -> EdnError {
        match parse_all(text) {
            Ok(forms) => panic!("{text:?} should fail, parsed {forms:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(one("nil"), Edn::Nil);
        assert_eq!(one("true"), Edn::Bool(true));
        assert_eq!(one("false"), Edn::Bool(false));
        assert_eq!(one("42"), Edn::Int(42));
        assert_eq!(one("-7"), Edn::Int(-7));
        assert_eq!(one("+3"), Edn::Int(3));
        assert_eq!(one("12N"), Edn::Int(12));
        assert_eq!(one("0x1F"), Edn::Int(31));
        assert_eq!(one("-0xff"), Edn::Int(-255));
        assert_eq!(one("18446744073709551615"), Edn::Int(i128::from(u64::MAX)));
        assert_eq!(one("-9223372036854775808"), Edn::Int(i128::from(i64::MIN)));
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("-2.5e3"), Edn::Float(-2500.0));
        assert_eq!(one("1E2"), Edn::Float(100.0));
        assert_eq!(one("3.25M"), Edn::Float(3.25));
        assert_eq!(one("7."), Edn::Float(7.0));
        assert_eq!(one("##Inf"), Edn::Float(f64::INFINITY));
        assert_eq!(one("##-Inf"), Edn::Float(f64::NEG_INFINITY));
        assert!(matches!(one("##NaN"), Edn::Float(x) if x.is_nan()));
        assert_eq!(one(":read"), Edn::Keyword("read".into()));
        assert_eq!(one(":jepsen/op"), Edn::Keyword("jepsen/op".into()));
        assert_eq!(one(":timed-out"), Edn::Keyword("timed-out".into()));
        assert_eq!(one("foo-bar?"), Edn::Symbol("foo-bar?".into()));
        assert_eq!(one("-"), Edn::Symbol("-".into()));
        assert_eq!(one("->x"), Edn::Symbol("->x".into()));
        assert_eq!(one("ns.a/b"), Edn::Symbol("ns.a/b".into()));
        assert_eq!(one("nilly"), Edn::Symbol("nilly".into()));
    }

    #[test]
    fn strings_and_characters() {
        assert_eq!(one(r#""a b""#), Edn::Str("a b".into()));
        assert_eq!(
            one(r#""q\"\\\n\t\r\b\f\/""#),
            Edn::Str("q\"\\\n\t\r\u{8}\u{c}/".into())
        );
        assert_eq!(one(r#""\u00e9\ud83d\ude00""#), Edn::Str("é😀".into()));
        assert_eq!(one("\"two\nlines\""), Edn::Str("two\nlines".into()));
        assert_eq!(one("\"héllo\""), Edn::Str("héllo".into()));
        assert_eq!(one("\\a"), Edn::Char('a'));
        assert_eq!(one("\\newline"), Edn::Char('\n'));
        assert_eq!(one("\\space"), Edn::Char(' '));
        assert_eq!(one("\\tab"), Edn::Char('\t'));
        assert_eq!(one("\\return"), Edn::Char('\r'));
        assert_eq!(one("\\backspace"), Edn::Char('\u{8}'));
        assert_eq!(one("\\formfeed"), Edn::Char('\u{c}'));
        assert_eq!(one("\\u0041"), Edn::Char('A'));
        assert_eq!(one("\\é"), Edn::Char('é'));
        assert_eq!(
            one("[\\( \\]]"),
            Edn::Vector(vec![Edn::Char('('), Edn::Char(']')])
        );
    }

    #[test]
    fn collections_and_nesting() {
        assert_eq!(
            one("[1 (2 3) {:a [4]} #{5}]"),
            Edn::Vector(vec![
                Edn::Int(1),
                Edn::List(vec![Edn::Int(2), Edn::Int(3)]),
                Edn::Map(vec![(
                    Edn::Keyword("a".into()),
                    Edn::Vector(vec![Edn::Int(4)])
                )]),
                Edn::Set(vec![Edn::Int(5)]),
            ])
        );
        assert_eq!(one("[]"), Edn::Vector(vec![]));
        assert_eq!(one("()"), Edn::List(vec![]));
        assert_eq!(one("{}"), Edn::Map(vec![]));
        assert_eq!(one("#{}"), Edn::Set(vec![]));
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(one(&deep), Edn::Vector(_)));
    }

    #[test]
    fn commas_comments_and_discards() {
        assert_eq!(
            one("[1,2 ,3 ; the rest is a comment ]\n 4]"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(2), Edn::Int(3), Edn::Int(4)])
        );
        assert_eq!(
            one("[1 #_2 3 #_ [4 5] #_#_ 6 7 8]"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(3), Edn::Int(8)])
        );
        assert_eq!(
            one("; leading\n #_ :gone :kept"),
            Edn::Keyword("kept".into())
        );
    }

    #[test]
    fn tagged_literals_keep_the_inner_value() {
        let inst = one(r#"#inst "2024-01-02T03:04:05.000-00:00""#);
        assert_eq!(
            inst,
            Edn::Tagged(
                "inst".into(),
                Box::new(Edn::Str("2024-01-02T03:04:05.000-00:00".into()))
            )
        );
        assert_eq!(inst.to_json(), json!("2024-01-02T03:04:05.000-00:00"));
        let record = one("#jepsen.history.Op{:index 0, :type :invoke}");
        assert_eq!(record.to_json(), json!({"index": 0, "type": "invoke"}));
        let object = one(r#"#object[java.lang.Exception 0x1f "boom"]"#);
        assert_eq!(object.to_json(), json!(["java.lang.Exception", 31, "boom"]));
        assert_eq!(
            one(r#"#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6""#).to_json(),
            json!("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
        );
    }

    #[test]
    fn converts_to_json() {
        let form = one(
            r#"{:process 3, :type :ok, :value [[:read :x 0] (1 nil)], 7 #{3 1 2}, "s" \c, [1] 2.5}"#,
        );
        assert_eq!(
            form.to_json(),
            json!({
                "process": 3,
                "type": "ok",
                "value": [["read", "x", 0], [1, null]],
                "7": [1, 2, 3],
                "s": "c",
                "[1]": 2.5,
            })
        );
        // Sets come out in one order whatever order they were written in.
        assert_eq!(
            one(r#"#{"b" 10 :a nil 9 [1]}"#).to_json(),
            one(r#"#{[1] 9 nil :a 10 "b"}"#).to_json()
        );
        assert_eq!(
            one(r#"#{"b" 10 nil 9}"#).to_json(),
            json!([null, 9, 10, "b"])
        );
        assert_eq!(one("18446744073709551615").to_json(), json!(u64::MAX));
        assert_eq!(one("##Inf").to_json(), json!("##Inf"));
    }

    #[test]
    fn display_reads_back() {
        let text = r#"{:a [1 -2.5 "q\"x\n" \c \space nil true], :b #{(sym)}, "k" #inst "t"}"#;
        let form = one(text);
        assert_eq!(one(&form.to_string()), form);
    }

    #[test]
    fn positions_across_lines() {
        let mut parser = Parser::new("; comment\n[{:a 1}\n  {:b\n   2}]");
        assert_eq!(
            parser.enter_sequence().unwrap(),
            Some(Position { line: 2, column: 1 })
        );
        let (at, _) = parser.next_in_sequence().unwrap().unwrap();
        assert_eq!(at, Position { line: 2, column: 2 });
        let (at, form) = parser.next_in_sequence().unwrap().unwrap();
        assert_eq!(at, Position { line: 3, column: 3 });
        assert_eq!(form.get("b"), Some(&Edn::Int(2)));
        assert_eq!(parser.next_in_sequence().unwrap(), None);
        assert_eq!(parser.next_form().unwrap(), None);
    }

    #[test]
    fn errors_say_where_and_why() {
        let e = fails("[1 2\n 3");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.reason.contains("unterminated vector"), "{e}");

        let e = fails("[1 2]\n  }");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.reason.contains("unmatched `}`"), "{e}");

        let e = fails("{:a [1 2}");
        assert_eq!((e.line, e.column), (1, 9));
        assert!(e.reason.contains("expected `]`"), "{e}");
        assert!(e.reason.contains("line 1, column 5"), "{e}");

        let e = fails("\n{:a 1 :b}");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.reason.contains("odd number of forms"), "{e}");

        let e = fails("[\"abc\n def");
        assert_eq!((e.line, e.column), (1, 2));
        assert!(e.reason.contains("unterminated string"), "{e}");

        let e = fails(r#""bad \q escape""#);
        assert_eq!((e.line, e.column), (1, 6));
        assert!(e.reason.contains("unknown escape"), "{e}");

        let e = fails("[1 99999999999999999999999]");
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.reason.contains("does not fit in 64 bits"), "{e}");

        let e = fails("#{1 2");
        assert!(e.reason.contains("unterminated set"), "{e}");
        let e = fails("{:a 1]");
        assert_eq!((e.line, e.column), (1, 6));
        assert!(
            e.reason
                .contains("expected `}` to close the map opened at line 1, column 1"),
            "{e}"
        );
        let e = fails("{:a 1");
        assert!(e.reason.contains("unterminated map"), "{e}");

        let e = fails("1/2");
        assert!(e.reason.contains("ratio"), "{e}");
        let e = fails("12abc");
        assert!(e.reason.contains("not a number"), "{e}");
        let e = fails("[:a @b]");
        assert_eq!((e.line, e.column), (1, 5));
        assert!(e.reason.contains("unexpected character `@`"), "{e}");
        let e = fails("#\"regex\"");
        assert!(e.reason.contains("not EDN"), "{e}");
        let e = fails("[1 #_]");
        assert!(e.reason.contains("`#_` must be followed"), "{e}");
        let e = fails("#inst");
        assert!(e.reason.contains("no value"), "{e}");
        let e = fails("\\bogus");
        assert!(e.reason.contains("unknown character literal"), "{e}");
        let e = fails("::auto");
        assert!(e.reason.contains("auto-resolved"), "{e}");
        let e = fails("##Foo");
        assert!(e.reason.contains("symbolic value"), "{e}");
        let e = fails(&"[".repeat(MAX_DEPTH + 1));
        assert!(e.reason.contains("nesting deeper"), "{e}");
        let e = fails(&format!("{}1", "#_".repeat(100_000)));
        assert!(e.reason.contains("nesting deeper"), "{e}");
        let e = fails(&format!("{}1", "#t ".repeat(100_000)));
        assert!(e.reason.contains("nesting deeper"), "{e}");
        assert_eq!(one(&format!("{}1 2 3", "#_".repeat(2))), Edn::Int(3));
        // Columns count characters, not bytes.
        let e = fails("\"é\" ]");
        assert_eq!((e.line, e.column), (1, 5));
        let e = parse_one("1 2").unwrap_err();
        assert!(e.reason.contains("more input"), "{e}");
    }

    #[test]
    fn columns_on_one_long_line() {
        // "é" is two bytes: columns must keep counting characters.
        let text = format!("[{}@]", "{:a \"é\"} ".repeat(1000));
        let mut parser = Parser::new(&text);
        parser.enter_sequence().unwrap();
        for k in 0..1000 {
            let (at, _) = parser.next_in_sequence().unwrap().unwrap();
            assert_eq!(
                at,
                Position {
                    line: 1,
                    column: 2 + 9 * k
                }
            );
        }
        let e = parser.next_in_sequence().unwrap_err();
        assert_eq!((e.line, e.column), (1, 2 + 9 * 1000));
        // A later error pointing back at the opening bracket still counts from the start.
        let e = parse_all(&format!("{} [", "\"é\" ".repeat(10))).unwrap_err();
        assert_eq!((e.line, e.column), (1, 42));
    }

    #[test]
    fn streaming_reports_unterminated_and_mismatched() {
        let mut parser = Parser::new("[{:a 1}\n{:b 2}");
        parser.enter_sequence().unwrap();
        parser.next_in_sequence().unwrap();
        parser.next_in_sequence().unwrap();
        let e = parser.next_in_sequence().unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.reason.contains("unterminated vector"), "{e}");

        let mut parser = Parser::new("({:a 1}]");
        parser.enter_sequence().unwrap();
        parser.next_in_sequence().unwrap();
        let e = parser.next_in_sequence().unwrap_err();
        assert!(e.reason.contains("expected `)`"), "{e}");
    }

    mod generated {
        use super::super::*;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed};

        fn name() -> impl Strategy<Value = String> {
            "[a-z][a-z0-9*+!_?<>=.-]{0,8}".prop_filter("reserved word", |s| {
                !matches!(s.as_str(), "nil" | "true" | "false")
            })
        }

        fn form() -> impl Strategy<Value = Edn> {
            let leaf = prop_oneof![
                Just(Edn::Nil),
                any::<bool>().prop_map(Edn::Bool),
                any::<i64>().prop_map(|i| Edn::Int(i128::from(i))),
                any::<u64>().prop_map(|i| Edn::Int(i128::from(i))),
                any::<f64>()
                    .prop_filter("finite", |x| x.is_finite())
                    .prop_map(Edn::Float),
                any::<String>().prop_map(Edn::Str),
                any::<char>().prop_map(Edn::Char),
                name().prop_map(Edn::Keyword),
                (name(), name()).prop_map(|(ns, n)| Edn::Keyword(format!("{ns}/{n}"))),
                name().prop_map(Edn::Symbol),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::List),
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::Vector),
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::Set),
                    prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Edn::Map),
                    ("[a-z][a-z0-9.]{0,6}", inner)
                        .prop_map(|(tag, v)| Edn::Tagged(tag, Box::new(v))),
                ]
            })
        }

        proptest! {
            #![proptest_config(Config {
                cases: 512,
                rng_seed: RngSeed::Fixed(0x5eed_ed17),
                failure_persistence: None,
                ..Config::default()
            })]

            /// Whatever the printer writes, the parser reads back as the same form.
            #[test]
            fn printed_forms_read_back(form in form()) {
                let text = form.to_string();
                let back = parse_one(&text);
                prop_assert_eq!(back.as_ref(), Ok(&form), "printed as {}", text);
            }

            /// Any input either parses or fails with a position inside the input; never
            /// a panic.
            #[test]
            fn arbitrary_text_never_panics(text in "[\\[\\](){}#_:;\\\\\"a-z0-9 \n.,/+é-]{0,40}") {
                if let Err(e) = parse_all(&text) {
                    prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1) + 1);
                    prop_assert!(e.column >= 1);
                }
            }
        }
    }
}
