//! Validation of one Compose file against the official Compose Specification JSON Schema.
//!
//! Docker Compose checks every file against this schema as parsed, before interpolation, and so do we:
//! [`validate`] walks the positioned tree of one file and returns every place where it breaks the
//! schema, in document order, each on the span the user wrote.
//!
//! The schema (`schema/compose-go-schema.json`, compose-go's, embedded) uses only a small part of JSON
//! Schema, and this module is an interpreter for exactly that part: `type` (a name or a list),
//! `properties`, `patternProperties`, `additionalProperties` (a boolean or a schema), `$ref` to
//! `#/$defs/...` (or the older `#/definitions/...`),
//! `oneOf`, `items`, `uniqueItems`, `required`, `enum`, `minimum`, `maximum` and `pattern`; the
//! annotations `description`, `deprecated`, `default`, `$schema`, `$id` and `title` are ignored. Any
//! other keyword makes the embedded schema fail to compile, which the tests catch, so a schema update
//! that needs more of JSON Schema cannot slip through silently. The schema is compiled once (regexes
//! included) on first use.
//!
//! YAML values are typed for the schema as: null → `null`, boolean → `boolean`, integer → `integer`
//! (and `number`), float → `number` (and `integer` when it has no fraction), string → `string`,
//! sequence → `array`, mapping → `object`. Nodes tagged `!reset` are not validated: they only say
//! "remove the inherited value" (Docker Compose drops them before validating).
//!
//! Messages are meant to be acted on: an unknown key names its context ("in service `web`") and the
//! closest allowed key; a wrong type says which types are allowed; a failed `oneOf` reports the errors
//! of the branch the user evidently meant rather than "matches no branch"; one mistake gives one
//! error (a value of the wrong type is not also checked against the keywords of the right type, and a
//! misspelt required key is reported as misspelt, not also as missing).

use std::collections::HashMap;
use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value as Json;

use crate::diag::{Diagnostic, Severity, suggest};
use crate::node::{Mapping, Node, Span, Tag, Value, format_float};

/// Every place where `root` breaks the Compose schema, in document order.
///
/// `root` is the tree of one file as parsed (before interpolation, merging or `extends`). Besides the
/// schema errors, a top-level `version` key gives a warning, as in Docker Compose.
pub fn validate(root: &Node) -> Vec<Diagnostic> {
    validate_with(&SCHEMA, root)
}

fn validate_with(compiled: &Compiled, root: &Node) -> Vec<Diagnostic> {
    let mut validator = Validator {
        schemas: &compiled.schemas,
        path: Vec::new(),
        found: Vec::new(),
    };
    validator.check(root, root.span, compiled.root);
    validator.found.into_iter().map(|f| f.diagnostic).collect()
}

/// The keys the schema allows in a service mapping, in the schema's order (besides these, keys
/// starting with `x-` are allowed). For other modules' did-you-mean.
pub fn service_keys() -> Vec<&'static str> {
    let compiled: &'static Compiled = &SCHEMA;
    let service = compiled.service.and_then(|id| compiled.schemas.get(id));
    service
        .into_iter()
        .flat_map(|s| s.properties.keys())
        .map(String::as_str)
        .collect()
}

static SCHEMA_TEXT: &str = include_str!("../schema/compose-go-schema.json");

static SCHEMA: LazyLock<Compiled> = LazyLock::new(|| {
    Compiled::from_text(SCHEMA_TEXT)
        .unwrap_or_else(|e| panic!("the embedded Compose schema cannot be used: {e}"))
});

// ---------------------------------------------------------------------------------------------------
// The compiled schema

type SchemaId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => return None,
        })
    }

    fn matches(self, node: &Node) -> bool {
        match (&node.value, self) {
            (Value::Null, JsonType::Null)
            | (Value::Bool(_), JsonType::Boolean)
            | (Value::Int(_), JsonType::Integer | JsonType::Number)
            | (Value::Float(_), JsonType::Number)
            | (Value::Str(_), JsonType::String)
            | (Value::Seq(_), JsonType::Array)
            | (Value::Map(_), JsonType::Object) => true,
            (Value::Float(f), JsonType::Integer) => f.is_finite() && f.fract() == 0.0,
            _ => false,
        }
    }

    /// The same words as [`Node::kind`], so that "must be X, found Y" reads evenly.
    fn phrase(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "a boolean",
            JsonType::Integer => "an integer",
            JsonType::Number => "a number",
            JsonType::String => "a string",
            JsonType::Array => "a sequence",
            JsonType::Object => "a mapping",
        }
    }
}

#[derive(Debug, Default)]
enum Additional {
    #[default]
    Allowed,
    Denied,
    Schema(SchemaId),
}

#[derive(Debug)]
struct PatternProperty {
    regex: Regex,
    /// The same test without the regex engine, for the schema's simple patterns.
    fast: FastPattern,
    schema: SchemaId,
}

impl PatternProperty {
    fn is_match(&self, key: &str) -> bool {
        match &self.fast {
            FastPattern::Prefix(prefix) => key.starts_with(prefix.as_str()),
            FastPattern::NotEmptyLine => !key.is_empty() && !key.contains('\n'),
            FastPattern::NotOnlyNewlines => key.bytes().any(|b| b != b'\n'),
            FastPattern::AsciiClass(set) => {
                !key.is_empty() && key.bytes().all(|b| b < 128 && set[b as usize])
            }
            FastPattern::Regex => self.regex.is_match(key),
        }
    }
}

/// The patterns of Compose schemas, matched without running the regex engine on every key of
/// every mapping (callgrind: `^x-` and `^[a-zA-Z0-9._-]+$` on every key were 2% of a load).
/// `pattern_matchers_agree_with_the_regexes` checks them against the regex.
#[derive(Debug)]
enum FastPattern {
    /// `^literal`.
    Prefix(String),
    /// `^.+$`: one line, not empty.
    NotEmptyLine,
    /// `.+`: a character other than a newline somewhere.
    NotOnlyNewlines,
    /// `^[class]+$`, the class made of ASCII letters, digits, `.`, `_` and `-`, and ranges.
    AsciiClass(Box<[bool; 128]>),
    Regex,
}

impl FastPattern {
    fn of(pattern: &str) -> FastPattern {
        if pattern == ".+" {
            return FastPattern::NotOnlyNewlines;
        }
        let Some(rest) = pattern.strip_prefix('^') else {
            return FastPattern::Regex;
        };
        if rest == ".+$" {
            return FastPattern::NotEmptyLine;
        }
        if !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return FastPattern::Prefix(rest.to_string());
        }
        let Some(class) = rest.strip_prefix('[').and_then(|r| r.strip_suffix("]+$")) else {
            return FastPattern::Regex;
        };
        let bytes = class.as_bytes();
        if bytes.is_empty() || bytes[0] == b'^' {
            return FastPattern::Regex;
        }
        let mut set = Box::new([false; 128]);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return FastPattern::Regex;
            }
            if b != b'-' && i + 2 < bytes.len() && bytes[i + 1] == b'-' {
                let end = bytes[i + 2];
                if !end.is_ascii_alphanumeric() || end < b {
                    return FastPattern::Regex;
                }
                for c in b..=end {
                    set[c as usize] = true;
                }
                i += 3;
            } else {
                set[b as usize] = true;
                i += 1;
            }
        }
        FastPattern::AsciiClass(set)
    }
}

/// One schema object, with `$ref`s resolved to ids in [`Compiled::schemas`].
#[derive(Debug, Default)]
struct Schema {
    reference: Option<SchemaId>,
    types: Option<Vec<JsonType>>,
    one_of: Vec<SchemaId>,
    properties: IndexMap<String, SchemaId>,
    pattern_properties: Vec<PatternProperty>,
    additional: Additional,
    required: Vec<String>,
    items: Option<SchemaId>,
    unique_items: bool,
    enumeration: Vec<Json>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    pattern: Option<Regex>,
}

#[derive(Debug)]
struct Compiled {
    schemas: Vec<Schema>,
    root: SchemaId,
    /// `#/$defs/service`.
    service: Option<SchemaId>,
}

impl Compiled {
    fn from_text(text: &str) -> Result<Compiled, String> {
        let json: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut compiler = Compiler {
            schemas: Vec::new(),
            definitions: HashMap::new(),
        };
        // Reserve an id for every definition first, so that `$ref`s resolve in any order. JSON
        // Schema 2020-12 (compose-go's schema) names them `$defs`, older drafts `definitions`.
        let defs_key = if json.get("$defs").is_some() {
            "$defs"
        } else {
            "definitions"
        };
        let definitions = match json.get(defs_key) {
            None => None,
            Some(Json::Object(defs)) => Some(defs),
            Some(_) => return Err(format!("`{defs_key}` is not an object")),
        };
        for name in definitions.into_iter().flat_map(|d| d.keys()) {
            compiler
                .definitions
                .insert(name.clone(), compiler.schemas.len());
            compiler.schemas.push(Schema::default());
        }
        for (name, definition) in definitions.into_iter().flatten() {
            let schema = compiler.build(definition, &format!("#/{defs_key}/{name}"))?;
            if let Some(&id) = compiler.definitions.get(name) {
                compiler.schemas[id] = schema;
            }
        }
        let root = compiler.compile(&json, "#")?;
        let service = compiler.definitions.get("service").copied();
        Ok(Compiled {
            schemas: compiler.schemas,
            root,
            service,
        })
    }
}

struct Compiler {
    schemas: Vec<Schema>,
    definitions: HashMap<String, SchemaId>,
}

impl Compiler {
    fn compile(&mut self, json: &Json, at: &str) -> Result<SchemaId, String> {
        let schema = self.build(json, at)?;
        self.schemas.push(schema);
        Ok(self.schemas.len() - 1)
    }

    fn build(&mut self, json: &Json, at: &str) -> Result<Schema, String> {
        let object = match json {
            Json::Object(object) => object,
            Json::Bool(true) => return Ok(Schema::default()),
            _ => return Err(format!("{at}: a schema must be an object")),
        };
        let mut schema = Schema::default();
        for (keyword, value) in object {
            let here = format!("{at}/{keyword}");
            match keyword.as_str() {
                "type" => {
                    let names: Vec<&Json> = match value {
                        Json::Array(names) => names.iter().collect(),
                        name => vec![name],
                    };
                    let types = names
                        .into_iter()
                        .map(|n| n.as_str().and_then(JsonType::parse))
                        .collect::<Option<Vec<_>>>()
                        .ok_or(format!("{here}: unknown type"))?;
                    schema.types = Some(types);
                }
                "properties" => {
                    for (name, sub) in value.as_object().ok_or(format!("{here}: not an object"))? {
                        let id = self.compile(sub, &format!("{here}/{name}"))?;
                        schema.properties.insert(name.clone(), id);
                    }
                }
                "patternProperties" => {
                    for (pattern, sub) in
                        value.as_object().ok_or(format!("{here}: not an object"))?
                    {
                        let regex = Regex::new(pattern).map_err(|e| format!("{here}: {e}"))?;
                        let id = self.compile(sub, &format!("{here}/{pattern}"))?;
                        schema.pattern_properties.push(PatternProperty {
                            regex,
                            fast: FastPattern::of(pattern),
                            schema: id,
                        });
                    }
                }
                "additionalProperties" => {
                    schema.additional = match value {
                        Json::Bool(true) => Additional::Allowed,
                        Json::Bool(false) => Additional::Denied,
                        sub => Additional::Schema(self.compile(sub, &here)?),
                    };
                }
                "$ref" => {
                    let name = value
                        .as_str()
                        .and_then(|r| {
                            r.strip_prefix("#/$defs/")
                                .or_else(|| r.strip_prefix("#/definitions/"))
                        })
                        .ok_or(format!(
                            "{here}: only `#/$defs/...` and `#/definitions/...` are supported"
                        ))?;
                    let id = self
                        .definitions
                        .get(name)
                        .ok_or(format!("{here}: no definition `{name}`"))?;
                    schema.reference = Some(*id);
                }
                "oneOf" => {
                    let branches = value.as_array().ok_or(format!("{here}: not an array"))?;
                    for (i, branch) in branches.iter().enumerate() {
                        let id = self.compile(branch, &format!("{here}/{i}"))?;
                        schema.one_of.push(id);
                    }
                }
                "items" => {
                    if value.is_array() {
                        return Err(format!("{here}: tuple `items` is not supported"));
                    }
                    schema.items = Some(self.compile(value, &here)?);
                }
                "uniqueItems" => {
                    schema.unique_items =
                        value.as_bool().ok_or(format!("{here}: not a boolean"))?;
                }
                "required" => {
                    schema.required = value
                        .as_array()
                        .and_then(|keys| {
                            keys.iter()
                                .map(|k| k.as_str().map(String::from))
                                .collect::<Option<Vec<_>>>()
                        })
                        .ok_or(format!("{here}: not a list of strings"))?;
                }
                "enum" => {
                    schema.enumeration = value
                        .as_array()
                        .ok_or(format!("{here}: not an array"))?
                        .clone();
                }
                "minimum" => schema.minimum = Some(value.as_f64().ok_or(format!("{here}: NaN"))?),
                "maximum" => schema.maximum = Some(value.as_f64().ok_or(format!("{here}: NaN"))?),
                "pattern" => {
                    let pattern = value.as_str().ok_or(format!("{here}: not a string"))?;
                    schema.pattern = Some(Regex::new(pattern).map_err(|e| format!("{here}: {e}"))?);
                }
                "definitions" | "$defs" if at == "#" => {}
                "description" | "deprecated" | "default" | "$schema" | "$id" | "title" => {}
                other => return Err(format!("{at}: unsupported keyword `{other}`")),
            }
        }
        Ok(schema)
    }
}

// ---------------------------------------------------------------------------------------------------
// The interpreter

/// One step of the path from the root to the node being checked.
#[derive(Clone, Copy, Debug)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// A diagnostic and how deep in the tree it was found (to choose among failed `oneOf` branches).
struct Found {
    depth: usize,
    diagnostic: Diagnostic,
}

struct Validator<'a> {
    schemas: &'a [Schema],
    path: Vec<Seg<'a>>,
    found: Vec<Found>,
}

impl<'a> Validator<'a> {
    fn report(&mut self, extra_depth: usize, diagnostic: Diagnostic) {
        self.found.push(Found {
            depth: self.path.len() + extra_depth,
            diagnostic,
        });
    }

    /// Checks `node` against schema `id`. `at` is where the node hangs in its parent (the key of a
    /// mapping entry, or the node itself), used when the node has no place of its own and for
    /// "missing key" errors.
    fn check(&mut self, node: &'a Node, at: Span, id: SchemaId) {
        if node.tag == Tag::Reset {
            return;
        }
        let schemas = self.schemas;
        let Some(schema) = schemas.get(id) else {
            return;
        };
        if let Some(reference) = schema.reference {
            self.check(node, at, reference);
        }
        if let Some(types) = &schema.types
            && !types.iter().any(|t| t.matches(node))
        {
            self.wrong_type(node, at, types);
            return;
        }
        if !schema.one_of.is_empty() && !self.one_of(node, at, &schema.one_of) {
            return;
        }
        if !schema.enumeration.is_empty()
            && !schema.enumeration.iter().any(|v| equals_json(node, v))
        {
            self.bad_enum(node, at, &schema.enumeration);
            return;
        }
        match &node.value {
            Value::Str(s) => {
                if let Some(pattern) = &schema.pattern
                    && !pattern.is_match(s)
                {
                    let message = format!(
                        "{} must match `{}`, found `{s}`",
                        subject(&self.path),
                        pattern.as_str()
                    );
                    self.report(0, Diagnostic::error(message, place(node, at)));
                }
            }
            Value::Int(_) | Value::Float(_) => self.check_bounds(node, at, schema),
            Value::Seq(items) => self.check_items(items, schema),
            Value::Map(mapping) => self.check_object(node, mapping, at, schema),
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// `oneOf`: the node is valid when it matches at least one branch. (JSON Schema wants exactly
    /// one, but the Compose schema's branches are meant to be disjoint — they differ by type — so
    /// "at least one" accepts the same documents and never blames the user for an overlap.)
    ///
    /// When no branch matches, only the branches whose type fits the node are considered: the
    /// errors reported are those of the branch whose errors reach deepest into the node (it got
    /// furthest, so it is most likely the one meant), then the one with fewest errors, then the
    /// first. When no branch even has the
    /// node's type, the error lists the types the branches allow.
    fn one_of(&mut self, node: &'a Node, at: Span, branches: &[SchemaId]) -> bool {
        let fitting: Vec<SchemaId> = branches
            .iter()
            .copied()
            .filter(|&b| self.fits_type(b, node))
            .collect();
        if fitting.is_empty() {
            let mut types = Vec::new();
            for &branch in branches {
                self.collect_types(branch, &mut types);
            }
            self.wrong_type(node, at, &types);
            return false;
        }
        let start = self.found.len();
        let mut best: Option<(usize, usize, Vec<Found>)> = None;
        for branch in fitting {
            self.check(node, at, branch);
            if !self.found[start..]
                .iter()
                .any(|f| f.diagnostic.severity == Severity::Error)
            {
                return true;
            }
            let errors = self.found.split_off(start);
            let depth = errors.iter().map(|f| f.depth).max().unwrap_or(0);
            let better = best
                .as_ref()
                .is_none_or(|(d, n, _)| depth > *d || (depth == *d && errors.len() < *n));
            if better {
                best = Some((depth, errors.len(), errors));
            }
        }
        if let Some((_, _, errors)) = best {
            self.found.extend(errors);
        }
        false
    }

    /// Whether the node has a type that schema `id` allows (looking through `$ref` and `oneOf`).
    fn fits_type(&self, id: SchemaId, node: &Node) -> bool {
        let Some(schema) = self.schemas.get(id) else {
            return true;
        };
        if let Some(reference) = schema.reference
            && !self.fits_type(reference, node)
        {
            return false;
        }
        if let Some(types) = &schema.types
            && !types.iter().any(|t| t.matches(node))
        {
            return false;
        }
        schema.one_of.is_empty() || schema.one_of.iter().any(|&b| self.fits_type(b, node))
    }

    fn collect_types(&self, id: SchemaId, out: &mut Vec<JsonType>) {
        let Some(schema) = self.schemas.get(id) else {
            return;
        };
        if let Some(reference) = schema.reference {
            self.collect_types(reference, out);
        }
        if let Some(types) = &schema.types {
            out.extend(types.iter().copied());
        } else {
            for &branch in &schema.one_of {
                self.collect_types(branch, out);
            }
        }
    }

    fn wrong_type(&mut self, node: &Node, at: Span, types: &[JsonType]) {
        let mut allowed: Vec<JsonType> = Vec::new();
        for &t in types {
            if !allowed.contains(&t) {
                allowed.push(t);
            }
        }
        if allowed.contains(&JsonType::Number) {
            allowed.retain(|&t| t != JsonType::Integer);
        }
        let phrases: Vec<&str> = allowed.iter().map(|t| t.phrase()).collect();
        let message = format!(
            "{} must be {}, found {}",
            subject(&self.path),
            join_or(&phrases),
            node.kind()
        );
        self.report(0, Diagnostic::error(message, place(node, at)));
    }

    fn bad_enum(&mut self, node: &Node, at: Span, allowed: &[Json]) {
        let list: Vec<String> = allowed.iter().map(Json::to_string).collect();
        let found = match node.scalar_text() {
            Some(text) => format!("`{text}`"),
            None => node.kind().to_string(),
        };
        let message = format!(
            "{} must be one of {}, found {found}",
            subject(&self.path),
            list.join(", ")
        );
        let mut diagnostic = Diagnostic::error(message, place(node, at));
        if let Some(text) = node.as_str()
            && let Some(close) = suggest(text, allowed.iter().filter_map(Json::as_str))
        {
            diagnostic = diagnostic.with_help(format!("did you mean `{close}`?"));
        }
        self.report(0, diagnostic);
    }

    fn check_bounds(&mut self, node: &Node, at: Span, schema: &Schema) {
        let value = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => return,
        };
        let found = node.scalar_text().unwrap_or_default();
        let message = match (schema.minimum, schema.maximum) {
            (Some(min), _) if value < min => format!(
                "{} must be at least {}, found {found}",
                subject(&self.path),
                format_float(min)
            ),
            (_, Some(max)) if value > max => format!(
                "{} must be at most {}, found {found}",
                subject(&self.path),
                format_float(max)
            ),
            _ => return,
        };
        self.report(0, Diagnostic::error(message, place(node, at)));
    }

    fn check_items(&mut self, items: &'a [Node], schema: &Schema) {
        for (i, item) in items.iter().enumerate() {
            if item.tag == Tag::Reset {
                continue;
            }
            if let Some(item_schema) = schema.items {
                self.path.push(Seg::Index(i));
                self.check(item, item.span, item_schema);
                self.path.pop();
            }
            if schema.unique_items
                && let Some(first) = items[..i]
                    .iter()
                    .find(|earlier| earlier.tag != Tag::Reset && same(earlier, item, 0))
            {
                let what = match item.scalar_text() {
                    Some(text) => format!("duplicate item `{text}`"),
                    None => "duplicate item".to_string(),
                };
                let first_at = if first.span.is_synthetic() {
                    String::new()
                } else {
                    format!(" (first at line {})", first.span.line)
                };
                let message = format!("{what} in {}{first_at}", subject(&self.path));
                self.report(1, Diagnostic::error(message, item.span));
            }
        }
    }

    fn check_object(&mut self, node: &'a Node, mapping: &'a Mapping, at: Span, schema: &Schema) {
        let here = if at.is_synthetic() { node.span } else { at };
        // An entry tagged `!reset` still counts as present: it is not the user's mistake.
        for key in &schema.required {
            if !mapping.contains_key(key) && !misspelt(mapping, schema, key) {
                let message = format!(
                    "missing required key `{key}` {}",
                    describe_object(&self.path)
                );
                self.report(0, Diagnostic::error(message, here));
            }
        }
        for (key, entry) in mapping {
            let child = &entry.node;
            if child.tag == Tag::Reset {
                // Key and value are skipped: Docker Compose removes the entry before validating.
                continue;
            }
            if self.path.is_empty() && key == "version" {
                let warning = Diagnostic::warning(
                    "the top-level `version` key is obsolete and ignored",
                    entry.key_span,
                )
                .with_help("remove it: Compose files are no longer versioned");
                self.report(1, warning);
            }
            let property = schema.properties.get(key).copied();
            let patterns = &schema.pattern_properties;
            // The patterns from the first that matches (all of them when a property does).
            let from = match property {
                Some(_) => 0,
                None => match patterns.iter().position(|p| p.is_match(key)) {
                    Some(first) => first,
                    None => {
                        match schema.additional {
                            Additional::Allowed => {}
                            Additional::Denied => self.unknown_key(key, entry.key_span, schema),
                            Additional::Schema(id) => {
                                self.path.push(Seg::Key(key));
                                self.check(child, entry.key_span, id);
                                self.path.pop();
                            }
                        }
                        continue;
                    }
                },
            };
            self.path.push(Seg::Key(key));
            if let Some(id) = property {
                self.check(child, entry.key_span, id);
            }
            for (i, p) in patterns.iter().enumerate().skip(from) {
                if (property.is_none() && i == from) || p.is_match(key) {
                    self.check(child, entry.key_span, p.schema);
                }
            }
            self.path.pop();
        }
    }

    fn unknown_key(&mut self, key: &str, key_span: Span, schema: &Schema) {
        let extensions = schema
            .pattern_properties
            .iter()
            .any(|p| p.regex.as_str() == "^x-");
        let name_pattern = schema
            .pattern_properties
            .iter()
            .find(|p| p.regex.as_str() != "^x-");
        let diagnostic = match name_pattern {
            Some(pattern) if schema.properties.is_empty() => {
                let pattern = pattern.regex.as_str();
                let message = match section_kind(&self.path) {
                    Some(kind) => format!("invalid {kind} name `{key}`: must match `{pattern}`"),
                    None => format!(
                        "invalid key `{key}` {}: must match `{pattern}`",
                        describe_object(&self.path)
                    ),
                };
                let diagnostic = Diagnostic::error(message, key_span);
                if pattern == "^[a-zA-Z0-9._-]+$" {
                    diagnostic.with_help("use only letters, digits, `.`, `_` and `-`")
                } else {
                    diagnostic
                }
            }
            _ => {
                let message = format!("unknown key `{key}` {}", describe_object(&self.path));
                let diagnostic = Diagnostic::error(message, key_span);
                let candidates = schema.properties.keys().map(String::as_str);
                match suggest(key, candidates) {
                    Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                    None if extensions => diagnostic.with_help("custom keys must start with `x-`"),
                    None => diagnostic,
                }
            }
        };
        self.report(1, diagnostic);
    }
}

/// Whether a key of `mapping` that the schema does not know looks like a misspelling of `wanted`
/// (then the unknown key is the error, and `wanted` is not also reported missing).
fn misspelt(mapping: &Mapping, schema: &Schema, wanted: &str) -> bool {
    mapping.keys().any(|key| {
        !schema.properties.contains_key(key)
            && !schema.pattern_properties.iter().any(|p| p.is_match(key))
            && suggest(key, schema.properties.keys().map(String::as_str)) == Some(wanted)
    })
}

/// The node's own place, or where it hangs when it has none.
fn place(node: &Node, at: Span) -> Span {
    if node.span.is_synthetic() {
        at
    } else {
        node.span
    }
}

/// "a", "a or b", "a, b or c".
fn join_or(words: &[&str]) -> String {
    match words {
        [] => "nothing".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// `services.web.ports[0]`.
fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// What a value is called at the start of a message: "`services.web.image`", or "the top level".
fn subject(path: &[Seg]) -> String {
    if path.is_empty() {
        "the top level".to_string()
    } else {
        format!("`{}`", dotted(path))
    }
}

/// The singular name of a top-level section's entries ("service" for `services`).
fn section_name(section: &str) -> Option<&'static str> {
    Some(match section {
        "services" => "service",
        "networks" => "network",
        "volumes" => "volume",
        "secrets" => "secret",
        "configs" => "config",
        "models" => "model",
        _ => return None,
    })
}

/// The kind of entry named by keys of the mapping at `path`, when it is a top-level section.
fn section_kind(path: &[Seg]) -> Option<&'static str> {
    match path {
        [Seg::Key(section)] => section_name(section),
        _ => None,
    }
}

/// Where a mapping is, for "unknown key `k` ...": "at top level", "in service `web`", "in service
/// `web` healthcheck", "in `services.web.deploy.resources`".
fn describe_object(path: &[Seg]) -> String {
    if path.is_empty() {
        return "at top level".to_string();
    }
    if let [Seg::Key(section), Seg::Key(name), rest @ ..] = path
        && let Some(kind) = section_name(section)
    {
        match rest {
            [] => return format!("in {kind} `{name}`"),
            [Seg::Key(key)] => return format!("in {kind} `{name}` {key}"),
            _ => {}
        }
    }
    format!("in `{}`", dotted(path))
}

/// JSON equality of a node and a schema value (for `enum`).
fn equals_json(node: &Node, json: &Json) -> bool {
    match (&node.value, json) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Str(a), Json::String(b)) => a == b,
        (Value::Int(a), Json::Number(b)) => match b.as_i64() {
            Some(b) => *a == b,
            None => b.as_f64() == Some(*a as f64),
        },
        (Value::Float(a), Json::Number(b)) => b.as_f64() == Some(*a),
        (Value::Seq(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equals_json(x, y))
        }
        (Value::Map(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, e)| b.get(k).is_some_and(|v| equals_json(&e.node, v)))
        }
        _ => false,
    }
}

/// How deep [`same`] looks before calling two values different (input may nest arbitrarily).
const MAX_COMPARE_DEPTH: usize = 64;

/// JSON equality of two nodes, ignoring places and tags (for `uniqueItems`).
fn same(a: &Node, b: &Node, depth: usize) -> bool {
    if depth > MAX_COMPARE_DEPTH {
        return false;
    }
    match (&a.value, &b.value) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => *x as f64 == *y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q, depth + 1))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, e)| y.get(k).is_some_and(|f| same(&e.node, &f.node, depth + 1)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matchers_agree_with_the_regexes() {
        let keys = [
            "", "x", "x-", "x-foo", "X-foo", "ax-", "web", "web-1", "a.b_c-d", "a b", "a/b", "é",
            "aé", "A", "Z9", "a\nb", "\n", "9", "-", ".", "_x", "a:b", "a\u{7f}",
        ];
        let mut patterns: Vec<&PatternProperty> = SCHEMA
            .schemas
            .iter()
            .flat_map(|s| &s.pattern_properties)
            .collect();
        assert!(!patterns.is_empty());
        let extra = [
            "^x-",
            "^.+$",
            "^[a-zA-Z0-9._-]+$",
            "^[a-z]+$",
            "^[a-z0-9]+$",
            "^[^a]+$",
            "^[a-z]*$",
            "[a-z]+",
            "^x-.*",
            "^[a-zA-Z_][a-zA-Z0-9_]*$",
        ]
        .map(|p| PatternProperty {
            regex: Regex::new(p).unwrap(),
            fast: FastPattern::of(p),
            schema: 0,
        });
        patterns.extend(extra.iter());
        for p in patterns {
            for key in keys {
                assert_eq!(
                    p.is_match(key),
                    p.regex.is_match(key),
                    "{} on {key:?}",
                    p.regex.as_str()
                );
            }
        }
    }
    use crate::node::{Entry, FileId};

    // -----------------------------------------------------------------------------------------------
    // A tiny YAML subset, enough to write test documents with real lines and columns: block mappings
    // and sequences (`- ` items, including `- key: value` items), plain and quoted scalars, flow
    // sequences and mappings of scalars, whole-line comments, and the `!reset` / `!override` tags.

    struct Line {
        no: u32,
        indent: usize,
        text: String,
    }

    struct Parser {
        lines: Vec<Line>,
        pos: usize,
    }

    fn span(line: u32, col: usize, len: usize) -> Span {
        Span::new(FileId(0), line, col as u32, len as u32)
    }

    /// Parses `src` after removing its common indentation; line 1 is the first non-empty line.
    fn yaml(src: &str) -> Node {
        let src = src.strip_prefix('\n').unwrap_or(src);
        let indent = src
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let lines = src
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| {
                let l = &l[indent..];
                Line {
                    no: i as u32 + 1,
                    indent: l.len() - l.trim_start().len(),
                    text: l.trim().to_string(),
                }
            })
            .collect();
        let mut parser = Parser { lines, pos: 0 };
        let indent = parser.lines.first().map_or(0, |l| l.indent);
        let root = parser.block(indent);
        let stuck = parser.lines.get(parser.pos).map(|l| l.no);
        assert_eq!(stuck, None, "the test YAML parser stopped at this line");
        root
    }

    fn is_item(text: &str) -> bool {
        text == "-" || text.starts_with("- ")
    }

    fn is_entry(text: &str) -> bool {
        !text.starts_with(['"', '\'', '[', '{']) && (text.contains(": ") || text.ends_with(':'))
    }

    impl Parser {
        fn block(&mut self, indent: usize) -> Node {
            match self.lines.get(self.pos) {
                Some(line) if is_item(&line.text) => self.seq(indent),
                Some(_) => self.map(indent),
                None => Node::null(Span::synthetic()),
            }
        }

        fn seq(&mut self, indent: usize) -> Node {
            let start = span(self.lines[self.pos].no, indent + 1, 1);
            let mut items = Vec::new();
            while let Some(line) = self.lines.get_mut(self.pos) {
                if line.indent != indent || !is_item(&line.text) {
                    break;
                }
                if line.text == "-" {
                    self.pos += 1;
                    let inner = self.lines.get(self.pos).map_or(indent + 2, |l| l.indent);
                    items.push(self.block(inner));
                    continue;
                }
                let rest = line.text[2..].trim_start().to_string();
                let col = indent + line.text.len() - rest.len();
                if is_entry(&rest) || is_item(&rest) {
                    line.indent = col;
                    line.text = rest;
                    items.push(self.block(col));
                } else {
                    let no = line.no;
                    self.pos += 1;
                    items.push(inline(&rest, no, col + 1));
                }
            }
            Node::seq(items, start)
        }

        fn map(&mut self, indent: usize) -> Node {
            let first = &self.lines[self.pos];
            let start = span(first.no, indent + 1, first.text.find(':').unwrap_or(1));
            let mut mapping = Mapping::default();
            while let Some(line) = self.lines.get(self.pos) {
                if line.indent != indent || is_item(&line.text) {
                    break;
                }
                let (key, rest) = match line.text.split_once(": ") {
                    Some((key, rest)) => (key.to_string(), rest.to_string()),
                    None => (line.text.trim_end_matches(':').to_string(), String::new()),
                };
                let no = line.no;
                let key_span = span(no, indent + 1, key.chars().count());
                let value_col = indent + key.chars().count() + 3;
                self.pos += 1;
                let (tag, bare) = take_tag(&rest);
                let node = if bare.is_empty() {
                    let mut node = match self.lines.get(self.pos) {
                        Some(next)
                            if next.indent > indent
                                || (next.indent == indent && is_item(&next.text)) =>
                        {
                            let inner = next.indent;
                            self.block(inner)
                        }
                        _ => Node::null(span(no, value_col, 1)),
                    };
                    node.tag = tag;
                    node
                } else {
                    inline(&rest, no, value_col)
                };
                mapping.insert(key, Entry { key_span, node });
            }
            Node::map(mapping, start)
        }
    }

    fn take_tag(text: &str) -> (Tag, &str) {
        for (name, tag) in [("!reset", Tag::Reset), ("!override", Tag::Override)] {
            if let Some(rest) = text.strip_prefix(name) {
                return (tag, rest.trim_start());
            }
        }
        (Tag::None, text)
    }

    /// A value written on one line, starting at column `col`.
    fn inline(text: &str, line: u32, col: usize) -> Node {
        let (tag, rest) = take_tag(text);
        let col = col + text.len() - rest.len();
        let mut node = if let Some(inner) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        {
            let items = split_flow(inner, col + 1)
                .into_iter()
                .map(|(t, c)| scalar(t, line, c))
                .collect();
            Node::seq(items, span(line, col, rest.len()))
        } else if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let mut mapping = Mapping::default();
            for (part, c) in split_flow(inner, col + 1) {
                let (key, value) = part.split_once(':').unwrap_or((part, ""));
                let value_trimmed = value.trim_start();
                let value_col = c + key.len() + 1 + value.len() - value_trimmed.len();
                let node = if value_trimmed.is_empty() {
                    Node::null(span(line, value_col, 1))
                } else {
                    scalar(value_trimmed, line, value_col)
                };
                mapping.insert(
                    key.trim().to_string(),
                    Entry {
                        key_span: span(line, c, key.trim().len()),
                        node,
                    },
                );
            }
            Node::map(mapping, span(line, col, rest.len()))
        } else {
            scalar(rest, line, col)
        };
        node.tag = tag;
        node
    }

    /// Splits the inside of a flow collection at top-level commas, with each part's column.
    fn split_flow(inner: &str, col: usize) -> Vec<(&str, usize)> {
        let mut parts = Vec::new();
        let mut quote = None;
        let mut start = 0;
        let mut push = |from: usize, to: usize| {
            let raw = &inner[from..to];
            let trimmed = raw.trim();
            if !trimmed.is_empty() {
                let lead = raw.len() - raw.trim_start().len();
                parts.push((trimmed, col + from + lead));
            }
        };
        for (i, c) in inner.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ',') => {
                    push(start, i);
                    start = i + 1;
                }
                _ => {}
            }
        }
        push(start, inner.len());
        parts
    }

    fn scalar(text: &str, line: u32, col: usize) -> Node {
        let at = span(line, col, text.chars().count());
        for q in ['"', '\''] {
            if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
                return Node::string(inner, at);
            }
        }
        let value = match text {
            "null" | "~" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                let numeric = text
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
                    && text.chars().any(|c| c.is_ascii_digit());
                match (text.parse::<i64>(), text.parse::<f64>()) {
                    (Ok(i), _) => Value::Int(i),
                    (_, Ok(f)) if numeric => Value::Float(f),
                    _ => Value::Str(text.to_string()),
                }
            }
        };
        Node::new(value, at)
    }

    // -----------------------------------------------------------------------------------------------

    /// Each diagnostic as `line:col+len severity: message (help)`.
    fn render(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics
            .iter()
            .map(|d| {
                let at = d.span.map_or("-".to_string(), |s| {
                    format!("{}:{}+{}", s.line, s.col, s.len)
                });
                let level = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                match &d.help {
                    Some(help) => format!("{at} {level}: {} (help: {help})", d.message),
                    None => format!("{at} {level}: {}", d.message),
                }
            })
            .collect()
    }

    fn check(src: &str) -> Vec<String> {
        render(&validate(&yaml(src)))
    }

    #[test]
    fn the_test_parser_places_nodes() {
        let root = yaml(
            "
            services:
              web:
                ports:
                  - \"80:80\"
                  - target: 90
                    published: 91
                command: [a, \"b c\"]
                x: !reset null
            ",
        );
        let web = root.get("services").and_then(|s| s.get("web"));
        let ports = web.and_then(|w| w.get("ports")).and_then(Node::as_seq);
        let ports = ports.unwrap_or_default();
        assert_eq!(ports[0].span, span(4, 9, 7));
        assert_eq!(ports[0].as_str(), Some("80:80"));
        let long = ports[1]
            .as_map()
            .map(|m| m.keys().cloned().collect::<Vec<_>>());
        assert_eq!(
            long,
            Some(vec!["target".to_string(), "published".to_string()])
        );
        assert_eq!(
            ports[1].get("published").map(|p| p.span),
            Some(span(6, 20, 2))
        );
        let command = web.and_then(|w| w.get("command")).and_then(Node::as_seq);
        assert_eq!(command.map(|c| c[1].span), Some(span(7, 18, 5)));
        assert_eq!(
            web.and_then(|w| w.get("x")).map(|x| x.tag),
            Some(Tag::Reset)
        );
    }

    #[test]
    fn the_embedded_schema_compiles_with_only_supported_keywords() {
        let compiled: &Compiled = &SCHEMA;
        assert!(compiled.schemas.len() > 100);
        let keys = service_keys();
        for key in [
            "image",
            "command",
            "ports",
            "healthcheck",
            "deploy",
            "restart",
        ] {
            assert!(keys.contains(&key), "{key}");
        }
        assert!(!keys.iter().any(|k| k.starts_with("x-")));
    }

    #[test]
    fn unknown_service_key_with_suggestion() {
        let out = check(
            "
            services:
              web:
                image: nginx
                comand: [\"nginx\"]
            ",
        );
        assert_eq!(
            out,
            ["4:5+6 error: unknown key `comand` in service `web` (help: did you mean `command`?)"]
        );
    }

    #[test]
    fn unknown_keys_deeper_in_a_service_name_their_context() {
        let out = check(
            "
            services:
              web:
                image: nginx
                healthcheck:
                  test: [CMD, true]
                  intervall: 5s
                deploy:
                  resources:
                    limits:
                      memory: 1g
                    limts:
                      cpus: 1
            ",
        );
        assert_eq!(
            out,
            [
                "5:19+4 error: `services.web.healthcheck.test[1]` must be a string, found a boolean",
                "6:7+9 error: unknown key `intervall` in service `web` healthcheck (help: did you mean `interval`?)",
                "11:9+5 error: unknown key `limts` in `services.web.deploy.resources` (help: did you mean `limits`?)",
            ]
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let out = check(
            "
            servics:
              web:
                image: nginx
            volumes: {}
            settings: 3
            ",
        );
        assert_eq!(
            out,
            [
                "1:1+7 error: unknown key `servics` at top level (help: did you mean `services`?)",
                "5:1+8 error: unknown key `settings` at top level (help: custom keys must start with `x-`)",
            ]
        );
    }

    #[test]
    fn extension_keys_are_accepted_at_top_level_service_and_network() {
        let out = check(
            "
            x-common:
              anything: [1, 2]
            services:
              web:
                image: nginx
                x-team: payments
                healthcheck:
                  test: [CMD, ok]
                  x-note: fine
            networks:
              backnet:
                driver: bridge
                x-owner: ops
                drivr: overlay
            volumes:
              data:
                x-backup: daily
            ",
        );
        assert_eq!(
            out,
            [
                "14:5+5 error: unknown key `drivr` in network `backnet` (help: did you mean `driver`?)"
            ]
        );
    }

    #[test]
    fn wrong_type_of_a_ports_item_lists_the_allowed_types() {
        let out = check(
            "
            services:
              web:
                image: nginx
                ports:
                  - [8080, 80]
                  - true
                mem_reservation: {soft: 1}
                expose:
                  - port: 1
            ",
        );
        assert_eq!(
            out,
            [
                "5:9+10 error: `services.web.ports[0]` must be a number, a string or a mapping, found a sequence",
                "6:9+4 error: `services.web.ports[1]` must be a number, a string or a mapping, found a boolean",
                "7:22+9 error: `services.web.mem_reservation` must be a string or an integer, found a mapping",
                "9:9+4 error: `services.web.expose[0]` must be a string or a number, found a mapping",
            ]
        );
    }

    #[test]
    fn wrong_type_of_a_whole_section_is_one_error() {
        let out = check(
            "
            services:
              web:
                image: [nginx]
                ports: \"80:80\"
                environment: 3
            ",
        );
        assert_eq!(
            out,
            [
                "3:12+7 error: `services.web.image` must be a string, found a sequence",
                "4:12+7 error: `services.web.ports` must be a sequence, found a string",
                "5:18+1 error: `services.web.environment` must be a mapping or a sequence, found an integer",
            ]
        );
    }

    #[test]
    fn bad_enum_in_the_branch_the_user_meant() {
        let out = check(
            "
            services:
              web:
                image: nginx
                depends_on:
                  db:
                    condition: service_healty
                volumes:
                  - type: bnd
                    source: .
                    target: /src
                cgroup: hots
              db:
                image: postgres
            ",
        );
        assert_eq!(
            out,
            [
                "6:20+14 error: `services.web.depends_on.db.condition` must be one of \"service_started\", \"service_healthy\", \"service_completed_successfully\", found `service_healty` (help: did you mean `service_healthy`?)",
                "8:15+3 error: `services.web.volumes[0].type` must be one of \"bind\", \"volume\", \"tmpfs\", \"cluster\", \"npipe\", \"image\", found `bnd` (help: did you mean `bind`?)",
                "11:13+4 error: `services.web.cgroup` must be one of \"host\", \"private\", found `hots` (help: did you mean `host`?)",
            ]
        );
    }

    #[test]
    fn restart_is_a_free_string_in_the_schema() {
        // The schema says `restart: {type: string}`; checking its value is the typed model's job.
        let out = check(
            "
            services:
              web:
                image: nginx
                restart: alway
            ",
        );
        assert_eq!(out, Vec::<String>::new());
    }

    #[test]
    fn missing_required_keys() {
        let out = check(
            "
            services:
              web:
                image: nginx
                depends_on:
                  db:
                    required: false
                  cache:
                    conditon: service_started
                volumes:
                  - source: data
                    target: /data
                ulimits:
                  nofile:
                    soft: 1024
            ",
        );
        assert_eq!(
            out,
            [
                "5:7+2 error: missing required key `condition` in `services.web.depends_on.db`",
                // A misspelt required key is one mistake: reported as unknown, not also as missing.
                "8:9+8 error: unknown key `conditon` in `services.web.depends_on.cache` (help: did you mean `condition`?)",
                "10:9+6 error: missing required key `type` in `services.web.volumes[0]`",
                "13:7+6 error: missing required key `hard` in `services.web.ulimits.nofile`",
            ]
        );
    }

    #[test]
    fn duplicates_in_unique_lists_point_at_the_first() {
        let out = check(
            "
            services:
              web:
                image: nginx
                cap_add: [NET_ADMIN, SYS_TIME, NET_ADMIN]
                ports:
                  - \"80:80\"
                  - 443
                  - \"80:80\"
                  - target: 9000
                  - target: 9000
                environment:
                  - A=1
                  - A=1
            ",
        );
        assert_eq!(
            out,
            [
                "4:36+9 error: duplicate item `NET_ADMIN` in `services.web.cap_add` (first at line 4)",
                "8:9+7 error: duplicate item `80:80` in `services.web.ports` (first at line 6)",
                "10:9+6 error: duplicate item in `services.web.ports` (first at line 9)",
                "13:9+3 error: duplicate item `A=1` in `services.web.environment` (first at line 12)",
            ]
        );
    }

    #[test]
    fn bad_service_name() {
        let out = check(
            "
            services:
              my app:
                image: nginx
              ok-name_1.2:
                image: nginx
            volumes:
              bad/name:
            ",
        );
        assert_eq!(
            out,
            [
                "2:3+6 error: invalid service name `my app`: must match `^[a-zA-Z0-9._-]+$` (help: use only letters, digits, `.`, `_` and `-`)",
                "7:3+8 error: invalid volume name `bad/name`: must match `^[a-zA-Z0-9._-]+$` (help: use only letters, digits, `.`, `_` and `-`)",
            ]
        );
    }

    #[test]
    fn bounds_and_patterns() {
        let out = check(
            "
            services:
              web:
                image: nginx
                oom_score_adj: -1001
                cpu_percent: 101
                container_name: a
                pull_policy: sometimes
            ",
        );
        assert_eq!(
            out,
            [
                "4:20+5 error: `services.web.oom_score_adj` must be at least -1000, found -1001",
                "5:18+3 error: `services.web.cpu_percent` must be at most 100, found 101",
                "6:21+1 error: `services.web.container_name` must match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, found `a`",
                "7:18+9 error: `services.web.pull_policy` must match `always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+`, found `sometimes`",
            ]
        );
    }

    #[test]
    fn version_is_allowed_with_a_warning() {
        let out = check(
            "
            version: \"3.8\"
            services:
              web:
                image: nginx
            ",
        );
        assert_eq!(
            out,
            [
                "1:1+7 warning: the top-level `version` key is obsolete and ignored (help: remove it: Compose files are no longer versioned)"
            ]
        );
    }

    #[test]
    fn the_top_level_must_be_a_mapping() {
        let out = check("- a\n- b\n");
        assert_eq!(
            out,
            ["1:1+1 error: the top level must be a mapping, found a sequence"]
        );
    }

    #[test]
    fn a_realistic_file_is_valid() {
        let out = check(
            "
            name: shop
            services:
              web:
                image: nginx:1.25
                build:
                  context: .
                  args:
                    VERSION: 1
                command: [nginx, -g, \"daemon off;\"]
                ports:
                  - \"8080:80\"
                  - 443
                  - target: 9000
                    published: \"9000\"
                    protocol: tcp
                    mode: host
                expose: [\"3000\", 3001]
                environment:
                  DEBUG: \"true\"
                  WORKERS: 4
                  RATIO: 0.5
                  EMPTY:
                env_file: .env
                healthcheck:
                  test: [CMD, curl, -f, http://localhost]
                  interval: 30s
                  timeout: 5s
                  retries: 3
                  start_period: 10s
                deploy:
                  replicas: 2
                  resources:
                    limits:
                      cpus: \"0.5\"
                      memory: 512M
                    reservations:
                      cpus: 0.25
                      memory: 128M
                  restart_policy:
                    condition: on-failure
                networks:
                  front:
                    aliases:
                      - www
                      - shop.local
                    ipv4_address: 172.16.238.10
                  back:
                depends_on:
                  db:
                    condition: service_healthy
                    restart: true
                  cache:
                    condition: service_started
                secrets:
                  - source: db_password
                    target: /run/secrets/db_password
                    mode: 0440
                  - api_key
                volumes:
                  - ./html:/usr/share/nginx/html:ro
                  - type: volume
                    source: data
                    target: /data
                    volume:
                      nocopy: true
                logging:
                  driver: json-file
                  options:
                    max-size: 10m
                ulimits:
                  nproc: 65535
                  nofile:
                    soft: 20000
                    hard: 40000
                restart: unless-stopped
                stop_grace_period: 1m30s
                oom_score_adj: -500
                x-custom: anything
              db:
                image: postgres:16
                environment:
                  - POSTGRES_PASSWORD_FILE=/run/secrets/db_password
                secrets: [db_password]
                networks: [back]
                volumes:
                  - data:/var/lib/postgresql/data
                healthcheck:
                  test: pg_isready
              cache:
                image: redis:7
                profiles: [full]
                networks:
                  back:
            networks:
              front:
              back:
                driver: bridge
                ipam:
                  config:
                    - subnet: 172.16.238.0/24
            volumes:
              data:
                external: true
            secrets:
              db_password:
                file: ./db_password.txt
              api_key:
                environment: API_KEY
            configs:
              nginx_conf:
                file: ./nginx.conf
            x-defaults:
              restart: always
            ",
        );
        assert_eq!(out, Vec::<String>::new());
    }

    #[test]
    fn reset_values_are_not_validated() {
        let out = check(
            "
            services:
              web:
                image: nginx
                ports: !reset []
                command: !reset {not: valid}
                depends_on:
                  db: !reset
                healthcheck: !reset 3
                cap_add:
                  - NET_ADMIN
                  - !reset NET_ADMIN
            ",
        );
        assert_eq!(out, Vec::<String>::new());
    }

    #[test]
    fn several_errors_are_all_reported_in_document_order() {
        let out = check(
            "
            services:
              a:
                imag: x
              b:
                image: 3
              c:
                ports:
                  - \"1:1\"
                  - target: 1
                    protocl: tcp
            ",
        );
        assert_eq!(
            out,
            [
                "3:5+4 error: unknown key `imag` in service `a` (help: did you mean `image`?)",
                "5:12+1 error: `services.b.image` must be a string, found an integer",
                "10:9+7 error: unknown key `protocl` in `services.c.ports[1]` (help: did you mean `protocol`?)",
            ]
        );
    }

    #[test]
    fn oneof_reports_the_branch_that_got_deepest() {
        // The Compose schema's branches differ by type; this one's two object branches do not.
        let compiled = Compiled::from_text(
            r##"{
                "type": "object",
                "properties": {
                    "v": {
                        "oneOf": [
                            {"type": "string"},
                            {"type": "object", "properties": {"a": {"type": "string"}},
                             "additionalProperties": false},
                            {"type": "object", "properties": {"b": {"$ref": "#/definitions/c"}},
                             "additionalProperties": false}
                        ]
                    }
                },
                "definitions": {
                    "c": {"type": "object", "properties": {"c": {"type": "integer"}}}
                }
            }"##,
        );
        let Ok(compiled) = compiled else {
            panic!("test schema: {compiled:?}");
        };
        let root = yaml(
            "
            v:
              b:
                c: x
            ",
        );
        assert_eq!(
            render(&validate_with(&compiled, &root)),
            ["3:8+1 error: `v.b.c` must be an integer, found a string"]
        );
        let root = yaml("v: [1]");
        assert_eq!(
            render(&validate_with(&compiled, &root)),
            ["1:4+3 error: `v` must be a string or a mapping, found a sequence"]
        );
        let root = yaml(
            "v:
  d: 1
",
        );
        assert_eq!(
            render(&validate_with(&compiled, &root)),
            ["2:3+1 error: unknown key `d` in `v`"]
        );
    }

    #[test]
    fn oneof_reports_within_the_branch_of_the_right_type() {
        // `gpus` is `"all"` or a list of device mappings; a list item with a bad key is reported
        // on that key, not as "must be a string".
        let out = check(
            "
            services:
              web:
                image: nginx
                gpus:
                  - driver: nvidia
                    count: [1]
            ",
        );
        assert_eq!(
            out,
            [
                "6:16+3 error: `services.web.gpus[0].count` must be a string or an integer, found a sequence"
            ]
        );
    }

    #[test]
    fn validating_a_thousand_services_is_unremarkable() {
        let service = yaml(
            "
            image: nginx
            command: [nginx, -g, \"daemon off;\"]
            ports: [\"80:80\", \"443:443\"]
            environment:
              A: 1
              B: two
            healthcheck:
              test: [CMD, true]
            depends_on:
              db:
                condition: service_healthy
            networks:
              front:
                aliases: [www]
            deploy:
              resources:
                limits:
                  memory: 1g
            ",
        );
        let mut services = Mapping::default();
        for i in 0..1000 {
            services.insert(
                format!("web{i}"),
                Entry {
                    key_span: span(i + 1, 3, 5),
                    node: service.clone(),
                },
            );
        }
        let mut top = Mapping::default();
        top.insert(
            "services".to_string(),
            Entry {
                key_span: span(1, 1, 8),
                node: Node::map(services, span(2, 3, 5)),
            },
        );
        let root = Node::map(top, span(1, 1, 8));
        let started = std::time::Instant::now();
        let out = validate(&root);
        eprintln!("validated 1000 services in {:?}", started.elapsed());
        // Every service has the same one error (a boolean in `healthcheck.test`).
        assert_eq!(out.len(), 1000);
        assert!(
            out.iter()
                .all(|d| d.message.ends_with("must be a string, found a boolean"))
        );
    }

    #[test]
    fn malformed_input_never_panics() {
        let strange = [
            "null",
            "services: null",
            "services: [a, b]",
            "services:\n  web: null",
            "services:\n  web: [1]",
            "services:\n  web:\n    ports: {a: b}",
            "services:\n  web:\n    deploy: null",
            "networks:\n  n: null",
            "x: 1.5e300",
        ];
        for src in strange {
            let _ = validate(&yaml(src));
        }
        let deep = (0..1_000).fold(Node::null(span(1, 1, 1)), |inner, _| {
            Node::seq(vec![inner], span(1, 1, 1))
        });
        let mut web = Mapping::default();
        web.insert(
            "cap_add".to_string(),
            Entry {
                key_span: span(1, 1, 1),
                node: Node::seq(vec![deep.clone(), deep], span(1, 1, 1)),
            },
        );
        let _ = validate(&Node::map(web, span(1, 1, 1)));
    }
}
