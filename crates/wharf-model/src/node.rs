//! The untyped, positioned YAML tree that every loading step works on.
//!
//! Compose semantics are defined on the untyped document: interpolation, `extends`, `include`, merging
//! of several files and the `!reset` / `!override` tags all happen before any typed decoding (as in
//! Docker Compose's loader). Every node keeps the [`Span`] it came from, so that an error found at any
//! later step still names the file, line and column the user wrote.

use indexmap::IndexMap;

/// Index of a file in a [`crate::SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Where a node was written: 1-based line and column, and its length in characters on that line
/// (at least 1) for underlining.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Span {
    pub fn new(file: FileId, line: u32, col: u32, len: u32) -> Self {
        Span {
            file,
            line,
            col,
            len: len.max(1),
        }
    }

    /// A span for values that have no place in a file (defaults, values made by wharf).
    pub fn synthetic() -> Self {
        Span::default()
    }

    pub fn is_synthetic(&self) -> bool {
        self.line == 0
    }
}

/// The Compose-specific YAML tags that steer merging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tag {
    #[default]
    None,
    /// `!reset`: remove the value inherited from earlier files (or `extends`).
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Mapping),
}

/// An ordered mapping; keys are strings (a key YAML reads as a number, a boolean or null is
/// refused while parsing, as compose-go refuses it). Hashed with FxHash: keys come from the
/// user's own files, and SipHash's protection against crafted collisions costs 5% of a load for
/// nothing here.
pub type Mapping = IndexMap<String, Entry, rustc_hash::FxBuildHasher>;

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key_span: Span,
    pub node: Node,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    pub tag: Tag,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        Node {
            value,
            span,
            tag: Tag::None,
        }
    }

    pub fn null(span: Span) -> Self {
        Node::new(Value::Null, span)
    }

    pub fn string(s: impl Into<String>, span: Span) -> Self {
        Node::new(Value::Str(s.into()), span)
    }

    pub fn map(m: Mapping, span: Span) -> Self {
        Node::new(Value::Map(m), span)
    }

    pub fn seq(items: Vec<Node>, span: Span) -> Self {
        Node::new(Value::Seq(items), span)
    }

    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Mapping> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Looks up `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|e| &e.node)
    }

    /// The text of a scalar as Docker Compose would print it (`true`, `3`, `1.5`, the string itself);
    /// `None` for null, sequences and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short name of the node's kind, for messages ("a string", "a mapping", ...).
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Formats a float the way Go's `%v` does for the values Compose files hold (`1.5`, `2`, `0.25`).
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}
