//! YAML text to positioned [`Node`] trees.
//!
//! Built on saphyr-parser's event stream (kept behind this one module). Scalars are resolved the way
//! Docker Compose's YAML library (go-yaml v3) resolves them when decoding into untyped values: `true`
//! and `false` (any case style of the core schema) are booleans, `yes`/`no`/`on`/`off` stay strings,
//! integers accept `_` separators and `0x`/`0o`/`0b`/leading-zero octal, `~`/`null`/empty are null.
//! Anchors, aliases and merge keys (`<<: *base`, `<<: [*a, *b]`) are expanded here, so later steps
//! never see them. A file with several documents yields one tree per document.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag as YamlTag};

use crate::diag::Diagnostic;
use crate::node::{Entry, FileId, Mapping, Node, Span, Tag, Value};

/// Deeper nesting than this is refused rather than risking the stack in later recursive steps.
const MAX_DEPTH: usize = 200;
/// Alias expansion may not produce more nodes than this (the "billion laughs" document).
const MAX_NODES: usize = 2_000_000;

/// Parses `text` (the contents of `file`) into one tree per YAML document.
pub fn parse(text: &str, file: FileId) -> Result<Vec<Node>, Diagnostic> {
    let mut builder = Builder {
        anchors: HashMap::new(),
        stack: Vec::new(),
        documents: Vec::new(),
        nodes: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            Diagnostic::error(
                format!("invalid YAML: {}", e.info()),
                Span::new(file, m.line() as u32, m.col() as u32 + 1, 1),
            )
        })?;
        let start = span.start;
        let len = if span.end.line() == start.line() {
            span.end.index().saturating_sub(start.index())
        } else {
            1
        };
        let at = Span::new(
            file,
            start.line() as u32,
            start.col() as u32 + 1,
            len as u32,
        );
        builder.event(event, at)?;
    }
    Ok(builder.documents)
}

enum Frame {
    Seq {
        anchor: usize,
        tag: Tag,
        span: Span,
        items: Vec<Node>,
    },
    Map {
        anchor: usize,
        tag: Tag,
        span: Span,
        entries: Mapping,
        /// Mappings pulled in by `<<` keys, applied when the mapping ends (explicit keys win).
        merges: Vec<(Span, Node)>,
        /// The key read and waiting for its value.
        key: Option<(String, Span, bool)>,
    },
}

struct Builder {
    anchors: HashMap<usize, Node>,
    stack: Vec<Frame>,
    documents: Vec<Node>,
    nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        match event {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    Diagnostic::error("alias refers to an anchor that is not defined", span)
                })?;
                self.nodes += count(&node);
                if self.nodes > MAX_NODES {
                    return Err(Diagnostic::error(
                        "aliases expand to too many values (more than 2,000,000)",
                        span,
                    ));
                }
                // An alias used as a key, or a value: either way the aliased node at this place.
                let mut node = node;
                node.span = Span {
                    len: node.span.len,
                    ..span
                };
                self.push_value(node, span, false)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = self.tag(tag.as_deref(), span)?;
                let value =
                    resolve_scalar(&text, style, tag.1).map_err(|m| Diagnostic::error(m, span))?;
                let node = Node {
                    value,
                    span,
                    tag: tag.0,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.nodes += 1;
                let merge_key = style == ScalarStyle::Plain && text == "<<";
                self.push_value(node, span, merge_key)
            }
            Event::SequenceStart(anchor, tag) => {
                let tag = self.tag(tag.as_deref(), span)?.0;
                self.open(Frame::Seq {
                    anchor,
                    tag,
                    span,
                    items: Vec::new(),
                })
            }
            Event::MappingStart(anchor, tag) => {
                let tag = self.tag(tag.as_deref(), span)?.0;
                self.open(Frame::Map {
                    anchor,
                    tag,
                    span,
                    entries: Mapping::default(),
                    merges: Vec::new(),
                    key: None,
                })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        anchor,
                        tag,
                        span,
                        items,
                    } => (
                        Node {
                            value: Value::Seq(items),
                            span,
                            tag,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        anchor,
                        tag,
                        span,
                        mut entries,
                        merges,
                        ..
                    } => {
                        apply_merge_keys(&mut entries, merges)?;
                        (
                            Node {
                                value: Value::Map(entries),
                                span,
                                tag,
                            },
                            anchor,
                        )
                    }
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.nodes += 1;
                let at = node.span;
                self.push_value(node, at, false)
            }
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            let span = match &frame {
                Frame::Seq { span, .. } | Frame::Map { span, .. } => *span,
            };
            return Err(Diagnostic::error(
                format!("values are nested more than {MAX_DEPTH} levels deep"),
                span,
            ));
        }
        // A collection used as a mapping key is not something Compose files have.
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            let (Frame::Seq { span, .. } | Frame::Map { span, .. }) = &frame;
            return Err(Diagnostic::error(
                "a mapping key must be a plain value, not a list or mapping",
                *span,
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Places a finished node: as a document, a sequence item, a mapping key, or a mapping value.
    fn push_value(&mut self, node: Node, span: Span, merge_key: bool) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => {
                self.documents.push(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                merges,
                key,
                ..
            }) => match key.take() {
                None => {
                    let key_span = node.span;
                    let name = match node.value {
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(Diagnostic::error(
                                "a mapping key must be a plain value, not a list or mapping",
                                span,
                            ));
                        }
                        // Most keys are strings: take the text instead of copying it.
                        Value::Str(s) => s,
                        other => return Err(self.non_string_key(other, key_span)),
                    };
                    *key = Some((name, key_span, merge_key));
                    Ok(())
                }
                Some((name, key_span, is_merge)) => {
                    if is_merge {
                        merges.push((key_span, node));
                        return Ok(());
                    }
                    if let Some(first) = entries.get(&name) {
                        return Err(Diagnostic::error(
                            format!(
                                "duplicate key `{name}` (first defined on line {})",
                                first.key_span.line
                            ),
                            key_span,
                        )
                        .with_help("remove one of the two; YAML mappings cannot repeat a key"));
                    }
                    entries.insert(name, Entry { key_span, node });
                    Ok(())
                }
            },
        }
    }

    /// compose-go refuses a key that YAML reads as a number, a boolean or null
    /// (`TestNonStringKeys`: "non-string key in services: 123"). Out of line and cold, so that
    /// the hot path of `push_value` stays small enough for the parser to be inlined around it.
    #[cold]
    #[inline(never)]
    fn non_string_key(&self, other: Value, key_span: Span) -> Diagnostic {
        let text = match &other {
            Value::Null => "null".to_string(),
            _ => Node::new(other, key_span).scalar_text().unwrap_or_default(),
        };
        let place = self.path();
        let place = if place.is_empty() {
            "at top level".to_string()
        } else {
            format!("in {place}")
        };
        Diagnostic::error(format!("non-string key {place}: {text}"), key_span)
            .with_help(format!("quote it (\"{text}\") if it is meant as a name"))
    }

    /// Where the value being read sits, as compose-go writes it: `services.web.ports[0]`.
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Map {
                    key: Some((k, _, _)),
                    ..
                } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Frame::Seq { items, .. } => out.push_str(&format!("[{}]", items.len())),
                Frame::Map { key: None, .. } => {}
            }
        }
        out
    }

    /// Our tag for a YAML tag, and whether it forces a string (`!!str`).
    fn tag(&self, tag: Option<&YamlTag>, span: Span) -> Result<(Tag, Option<CoreTag>), Diagnostic> {
        let Some(tag) = tag else {
            return Ok((Tag::None, None));
        };
        let full = format!("{}{}", tag.handle, tag.suffix);
        match full.as_str() {
            "!reset" => Ok((Tag::Reset, None)),
            "!override" => Ok((Tag::Override, None)),
            "!!str" | "tag:yaml.org,2002:str" => Ok((Tag::None, Some(CoreTag::Str))),
            "!!int" | "tag:yaml.org,2002:int" => Ok((Tag::None, Some(CoreTag::Int))),
            "!!float" | "tag:yaml.org,2002:float" => Ok((Tag::None, Some(CoreTag::Float))),
            "!!bool" | "tag:yaml.org,2002:bool" => Ok((Tag::None, Some(CoreTag::Bool))),
            "!!null" | "tag:yaml.org,2002:null" => Ok((Tag::None, Some(CoreTag::Null))),
            "!!map" | "!!seq" | "tag:yaml.org,2002:map" | "tag:yaml.org,2002:seq" => {
                Ok((Tag::None, None))
            }
            _ => Err(
                Diagnostic::error(format!("unsupported YAML tag `{full}`"), span)
                    .with_help("Compose files accept the tags `!reset` and `!override` only"),
            ),
        }
    }
}

fn apply_merge_keys(entries: &mut Mapping, merges: Vec<(Span, Node)>) -> Result<(), Diagnostic> {
    for (span, node) in merges {
        let sources: Vec<Node> = match node.value {
            Value::Map(_) => vec![node],
            Value::Seq(items) => items,
            _ => {
                return Err(Diagnostic::error(
                    "a merge key `<<` takes a mapping or a list of mappings",
                    span,
                ));
            }
        };
        // Earlier sources win over later ones; explicit keys win over all.
        for source in sources {
            let Value::Map(map) = source.value else {
                return Err(Diagnostic::error(
                    "a merge key `<<` takes a mapping or a list of mappings",
                    source.span,
                ));
            };
            for (k, v) in map {
                if !entries.contains_key(&k) {
                    entries.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

fn count(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(m) => 1 + m.values().map(|e| count(&e.node)).sum::<usize>(),
        _ => 1,
    }
}

#[derive(Clone, Copy)]
enum CoreTag {
    Str,
    Int,
    Float,
    Bool,
    Null,
}

fn resolve_scalar(s: &str, style: ScalarStyle, tag: Option<CoreTag>) -> Result<Value, String> {
    match tag {
        Some(CoreTag::Str) => return Ok(Value::Str(s.to_string())),
        Some(CoreTag::Null) => return Ok(Value::Null),
        Some(CoreTag::Int) => {
            return parse_int(s)
                .map(Value::Int)
                .ok_or_else(|| format!("`{s}` is tagged !!int but is not an integer"));
        }
        Some(CoreTag::Float) => {
            return parse_float(s)
                .or_else(|| parse_int(s).map(|i| i as f64))
                .map(Value::Float)
                .ok_or_else(|| format!("`{s}` is tagged !!float but is not a number"));
        }
        Some(CoreTag::Bool) => {
            return parse_bool(s)
                .map(Value::Bool)
                .ok_or_else(|| format!("`{s}` is tagged !!bool but is not a boolean"));
        }
        None => {}
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::Str(s.to_string()));
    }
    Ok(resolve_plain(s))
}

/// Resolves an untagged plain scalar as go-yaml v3 does for untyped values.
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        _ => {}
    }
    if let Some(b) = parse_bool(s) {
        return Value::Bool(b);
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Some(i) = parse_int(s) {
            return Value::Int(i);
        }
        if let Some(f) = parse_float(s) {
            return Value::Float(f);
        }
    }
    Value::Str(s.to_string())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` after removing `_`, plus YAML 1.2's `0o` octal.
fn parse_int(s: &str) -> Option<i64> {
    let plain: std::borrow::Cow<'_, str> = if s.contains('_') {
        s.chars().filter(|&c| c != '_').collect::<String>().into()
    } else {
        s.into()
    };
    let (negative, digits) = match plain.as_bytes().first()? {
        b'-' => (true, &plain[1..]),
        b'+' => (false, &plain[1..]),
        _ => (false, plain.as_ref()),
    };
    if digits.is_empty() {
        return None;
    }
    let (radix, body) = if let Some(r) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
        (2, r)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

fn parse_float(s: &str) -> Option<f64> {
    let plain: std::borrow::Cow<'_, str> = if s.contains('_') {
        s.chars().filter(|&c| c != '_').collect::<String>().into()
    } else {
        s.into()
    };
    match plain.as_ref() {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // go-yaml's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let b = plain.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return None;
        }
    } else if int_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    plain.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let mut docs = parse(text, FileId(0)).expect("parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn resolves_scalars_like_compose() {
        let n = one(
            "a: yes\nb: true\nc: 0755\nd: 1_000\ne: 1.5\nf: ~\ng: '8080'\nh: 8080:80\ni: 0x1F\nj: .5\n",
        );
        let get = |k: &str| n.get(k).unwrap().value.clone();
        assert_eq!(get("a"), Value::Str("yes".into()));
        assert_eq!(get("b"), Value::Bool(true));
        assert_eq!(get("c"), Value::Int(493));
        assert_eq!(get("d"), Value::Int(1000));
        assert_eq!(get("e"), Value::Float(1.5));
        assert_eq!(get("f"), Value::Null);
        assert_eq!(get("g"), Value::Str("8080".into()));
        assert_eq!(get("h"), Value::Str("8080:80".into()));
        assert_eq!(get("i"), Value::Int(31));
        assert_eq!(get("j"), Value::Float(0.5));
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("services:\n  web:\n    image: nginx\n");
        let web = n
            .get("services")
            .unwrap()
            .as_map()
            .unwrap()
            .get("web")
            .unwrap();
        assert_eq!(
            (web.key_span.line, web.key_span.col, web.key_span.len),
            (2, 3, 3)
        );
        let image = web.node.as_map().unwrap().get("image").unwrap();
        assert_eq!((image.node.span.line, image.node.span.col), (3, 12));
    }

    #[test]
    fn expands_anchors_and_merge_keys() {
        let n = one(
            "x-base: &base\n  image: app\n  restart: always\nservices:\n  a:\n    <<: *base\n    restart: 'no'\n  b: *base\n",
        );
        let services = n.get("services").unwrap();
        let a = services.get("a").unwrap();
        assert_eq!(a.get("image").unwrap().as_str(), Some("app"));
        assert_eq!(a.get("restart").unwrap().as_str(), Some("no"));
        assert!(a.get("<<").is_none());
        assert_eq!(
            services.get("b").unwrap().get("restart").unwrap().as_str(),
            Some("always")
        );
    }

    #[test]
    fn merge_key_list_prefers_earlier_maps() {
        let n = one("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n");
        let c = n.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().value, Value::Int(1));
        assert_eq!(c.get("y").unwrap().value, Value::Int(2));
    }

    #[test]
    fn reads_compose_tags() {
        let n = one("ports: !reset []\ncommand: !override [a]\n");
        assert_eq!(n.get("ports").unwrap().tag, Tag::Reset);
        assert_eq!(n.get("command").unwrap().tag, Tag::Override);
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let e = parse("a: 1\nb: 2\na: 3\n", FileId(0)).unwrap_err();
        assert_eq!(e.message, "duplicate key `a` (first defined on line 1)");
        assert_eq!(e.span.map(|s| s.line), Some(3));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("services:\n  web: [a, b\n", FileId(0)).unwrap_err();
        assert!(e.message.starts_with("invalid YAML: "), "{}", e.message);
        assert!(e.span.is_some());
    }

    #[test]
    fn unknown_tag_is_refused() {
        let e = parse("a: !foo x\n", FileId(0)).unwrap_err();
        assert_eq!(e.message, "unsupported YAML tag `!foo`");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&text, FileId(0)).unwrap_err();
        assert!(e.message.contains("too many values"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(500), "]".repeat(500));
        // Either our own limit or the parser's recursion limit refuses it; neither overflows.
        let e = parse(&text, FileId(0)).unwrap_err();
        assert!(
            e.message.contains("nested") || e.message.contains("recursion limit"),
            "{}",
            e.message
        );
    }

    #[test]
    fn several_documents() {
        let docs = parse("a: 1\n---\nb: 2\n", FileId(0)).unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn empty_file_has_no_document() {
        assert!(parse("", FileId(0)).unwrap().is_empty());
        assert!(parse("# only a comment\n", FileId(0)).unwrap().is_empty());
    }
}
