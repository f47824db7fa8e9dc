//! Reads our OpenAPI document into a small, checked model of what the generator emits.
//!
//! The reader is deliberately strict: it knows the handful of OpenAPI constructs the SDK needs
//! and rejects everything else with an error naming the schema, path and key. A generator that
//! silently skipped `oneOf` or an inline enum would produce code that compiles and is wrong.

use std::collections::{BTreeSet, HashMap};

use heck::{ToSnakeCase, ToUpperCamelCase};
use serde_norway::Value;

use super::yaml::{kind, Obj};
use super::Error;

/// The validated id newtypes of `basiq_core::id` an `x-rust-type` may name.
pub const ID_TYPES: &[&str] = &[
    "UserId",
    "JobId",
    "ConnectionId",
    "AccountId",
    "TransactionId",
    "InstitutionId",
];

/// Hand-written basiq-core types an `x-rust-type` may name (on `type: string` properties), with
/// the module that defines them. They are open enums the policies already use
/// (`refresh::ConnectionStatus`, `connectors::ConnectionMethod`, `connectors::ConnectorStatus`);
/// generating a second copy would force conversions everywhere, and `ConnectionMethod` needs
/// aliases (`open-banking` / `openbanking`) the generated enums do not have.
pub const CORE_TYPES: &[(&str, &str)] = &[
    ("ConnectionMethod", "vocabulary"),
    ("ConnectionStatus", "vocabulary"),
    ("ConnectorStatus", "vocabulary"),
];

/// Hand-written outputs an operation may declare with `x-rust-output`, with the module that
/// defines them. Each type has `fn parse(&HttpResponse) -> Result<Self, Error>`, called after the
/// status check: used when the status itself carries meaning (refresh: 200 = the job already
/// running, 202 = a new job), which a plain model cannot express.
pub const RUST_OUTPUTS: &[(&str, &str)] = &[("RefreshResponse", "refresh")];

/// What the generator emits, in document order.
#[derive(Debug)]
pub struct Api {
    pub schemas: Vec<Schema>,
    pub operations: Vec<Operation>,
}

/// A named schema under `components.schemas`.
#[derive(Debug)]
pub enum Schema {
    Enum(EnumDef),
    Struct(StructDef),
}

impl Schema {
    pub fn name(&self) -> &str {
        match self {
            Schema::Enum(e) => &e.name,
            Schema::Struct(s) => &s.name,
        }
    }
}

/// An open string enum: known values plus `Other(String)`.
#[derive(Debug)]
pub struct EnumDef {
    pub name: String,
    pub doc: String,
    pub variants: Vec<Variant>,
}

#[derive(Debug)]
pub struct Variant {
    pub wire: String,
    pub ident: String,
    pub doc: String,
}

/// An object schema.
#[derive(Debug)]
pub struct StructDef {
    pub name: String,
    pub doc: String,
    pub fields: Vec<Field>,
    /// `anyOf: [{required: [...]}, ...]`: at least one group must be fully present. Holds Rust
    /// field names.
    pub any_of: Vec<Vec<String>>,
    /// `x-non-exhaustive`, when given.
    pub non_exhaustive: Option<bool>,
}

#[derive(Debug)]
pub struct Field {
    pub wire: String,
    pub rust: String,
    pub doc: String,
    pub ty: Ty,
    pub required: bool,
    pub aliases: Vec<String>,
    /// `x-accept-number: true`: an optional string Basiq sometimes sends as a JSON number
    /// (`subClass.code: 722`), read as that number's text.
    pub accept_number: bool,
    /// `x-accept-single: true`: a list Basiq sometimes sends as its one item (a string or an
    /// object), read as a list of one.
    pub accept_single: bool,
    /// `x-accept-list: true`: an optional object Basiq sometimes sends wrapped in a list of one,
    /// read as that object.
    pub accept_list: bool,
}

/// A field or parameter type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    String,
    Bool,
    U64,
    I64,
    /// One of [`ID_TYPES`].
    Id(String),
    /// `time::OffsetDateTime`, read leniently (RFC 3339, a bare date, `""` or `null`).
    Timestamp,
    /// `rust_decimal::Decimal` read from Basiq's decimal strings (`x-rust-type: Decimal`);
    /// optional properties only.
    Decimal,
    /// `serde_json::Value` for a free-form object (`type: object` + `x-rust-type: JsonValue`);
    /// optional properties and array items only.
    Json,
    /// One of [`CORE_TYPES`], by name.
    Core(String),
    /// `u32`: bounded integer query parameters only.
    U32,
    /// Another schema (enum or struct), by name.
    Ref(String),
    Array(Box<Ty>),
}

/// One generated operation.
#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: Option<String>,
    pub idempotent: bool,
    /// The path split on `/`: literals and parameters (by Rust field name).
    pub segments: Vec<Segment>,
    pub path_params: Vec<Param>,
    pub query_params: Vec<Param>,
    pub body: Option<Body>,
    /// 2xx statuses, ascending.
    pub success: Vec<u16>,
    /// The schema the 2xx responses carry; `None` when they have no body.
    pub output: Option<String>,
    /// A `204` documented beside 2xx responses with a body (Basiq's summaries answer 204 when
    /// there is nothing to summarise): the output is then `Option` of the model, `None` on it.
    pub none_on: Option<u16>,
    /// `x-rust-output`: a hand-written output type (one of [`RUST_OUTPUTS`]) parsed by its own
    /// `parse`, replacing the model above (which then only documents the body).
    pub rust_output: Option<String>,
    /// `x-sdk: resource.method`: the facade method (`client.events().list()`) generated for it
    /// in `crates/basiq/src/endpoints.rs`; `None` for operations wrapped by hand.
    pub sdk: Option<SdkMethod>,
}

/// Where an operation appears on the facade clients: `client.<accessor>().<method>(…)`.
#[derive(Debug, Clone)]
pub struct SdkMethod {
    /// The accessor on the client, snake_case (`auth_links`); the wrapper type is its
    /// UpperCamelCase (`AuthLinks`).
    pub accessor: String,
    /// The method, snake_case (`list`).
    pub method: String,
    /// `x-sdk-query: TransactionQuery`: the method takes this facade query builder
    /// (`basiq::TransactionQuery`) instead of the optional query parameters, and builds the
    /// operation with its `operation(ids…)`; no `_filtered` twin is generated.
    pub query: Option<String>,
}

#[derive(Debug)]
pub enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug)]
pub struct Param {
    pub wire: String,
    pub rust: String,
    pub doc: String,
    pub ty: Ty,
    /// `x-context`: `user`, `job` or `connection`.
    pub context: Option<String>,
    /// For [`Ty::U32`] query parameters: the inclusive range checked before sending.
    pub bounds: Option<(u64, u64)>,
    /// For query parameters: `required: true` (a `new()` argument, refused when blank) rather
    /// than an optional builder method.
    pub required: bool,
}

#[derive(Debug)]
pub struct Body {
    pub schema: String,
    pub doc: String,
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// Methods every operation type already has (inherent `new`, and the `Operation` trait's).
const RESERVED_METHODS: &[&str] = &[
    "new",
    "request",
    "parse",
    "is_idempotent",
    "context",
    "authentication",
];

/// Parses and checks the whole document.
pub fn parse(text: &str) -> Result<Api, Error> {
    let root: Value = serde_norway::from_str(text)
        .map_err(|e| Error::at("(document)", format!("not valid YAML: {e}")))?;
    check_refs(&root, &root, "")?;
    let doc = Obj::new(&root, "")?;
    doc.only(&[
        "openapi",
        "info",
        "servers",
        "security",
        "tags",
        "paths",
        "components",
    ])?;
    let version = doc.req_str("openapi")?;
    if !version.starts_with("3.0.") {
        return Err(Error::at(
            "openapi",
            format!("expected an OpenAPI 3.0.x document, found {version:?}"),
        ));
    }
    let components = match doc.get("components") {
        Some(v) => Obj::new(v, "components")?,
        None => return Err(Error::at("", "missing `components`".to_owned())),
    };
    components.only(&[
        "schemas",
        "parameters",
        "responses",
        "securitySchemes",
        "requestBodies",
    ])?;

    let raw_schemas = components.entries("schemas")?;
    let mut handwritten = BTreeSet::new();
    let mut generated_names = BTreeSet::new();
    for entry in &raw_schemas {
        let obj = Obj::new(entry.value, entry.at.clone())?;
        if obj.bool("x-basiq-handwritten")? == Some(true) {
            handwritten.insert(entry.key.clone());
        } else {
            generated_names.insert(entry.key.clone());
        }
    }
    let names = Names {
        handwritten: &handwritten,
        generated: &generated_names,
    };

    let mut schemas = Vec::new();
    for entry in &raw_schemas {
        if handwritten.contains(&entry.key) {
            continue;
        }
        check_type_name(&entry.key, &entry.at)?;
        if CORE_TYPES
            .iter()
            .chain(RUST_OUTPUTS)
            .any(|(core, _)| core == &entry.key)
        {
            return Err(Error::at(
                &entry.at,
                format!(
                    "schema `{}` has the name of a hand-written basiq-core type; refer to that \
                     type with `x-rust-type` instead of generating a duplicate",
                    entry.key
                ),
            ));
        }
        schemas.push(parse_schema(&entry.key, entry.value, &entry.at, &names)?);
    }

    let mut operations = Vec::new();
    let mut op_names = HashMap::new();
    for path_entry in doc.entries("paths")? {
        let item = Obj::new(path_entry.value, path_entry.at.clone())?;
        let mut allowed = vec!["parameters", "summary", "description"];
        allowed.extend_from_slice(METHODS);
        item.only(&allowed)?;
        let shared = match item.seq("parameters")? {
            Some(list) => list,
            None => &[],
        };
        for method in METHODS {
            let Some(op_value) = item.get(method) else {
                continue;
            };
            let at = item.child(method);
            let op = Obj::new(op_value, at.clone())?;
            if op.bool("x-basiq-handwritten")? == Some(true) {
                continue;
            }
            let parsed = parse_operation(
                &root,
                &path_entry.key,
                method,
                &op,
                shared,
                &item.child("parameters"),
                &names,
            )?;
            if let Some(previous) = op_names.insert(parsed.name.clone(), at.clone()) {
                return Err(Error::at(
                    &at,
                    format!(
                        "operation name `{}` is already used by {previous}",
                        parsed.name
                    ),
                ));
            }
            operations.push(parsed);
        }
    }

    let api = Api {
        schemas,
        operations,
    };
    check_bodies(&api)?;
    check_accept_list(&api)?;
    Ok(api)
}

/// Which schema names exist, and which of them are implemented by hand.
struct Names<'a> {
    handwritten: &'a BTreeSet<String>,
    generated: &'a BTreeSet<String>,
}

impl Names<'_> {
    /// The schema a generated item refers to; handwritten schemas have no generated type.
    fn generated_ref(&self, reference: &str, at: &str) -> Result<String, Error> {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| {
                Error::at(
                    at,
                    format!("`$ref: {reference}` must point into #/components/schemas/"),
                )
            })?;
        if self.handwritten.contains(name) {
            return Err(Error::at(
                at,
                format!("`{name}` is x-basiq-handwritten, so it has no generated type to refer to"),
            ));
        }
        if !self.generated.contains(name) {
            return Err(Error::at(at, format!("unknown schema `{name}`")));
        }
        Ok(name.to_owned())
    }
}

/// Every `$ref` anywhere in the document must resolve, handwritten parts included.
fn check_refs(root: &Value, value: &Value, at: &str) -> Result<(), Error> {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let key_str = match key {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(Error::at(
                            at,
                            format!("expected string keys, found {}", kind(other)),
                        ))
                    }
                };
                let child_at = if at.is_empty() {
                    key_str.clone()
                } else {
                    format!("{at}.{key_str}")
                };
                if key_str == "$ref" {
                    let Value::String(target) = child else {
                        return Err(Error::at(&child_at, "`$ref` must be a string".to_owned()));
                    };
                    resolve(root, target, &child_at)?;
                } else {
                    check_refs(root, child, &child_at)?;
                }
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                check_refs(root, item, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Resolves a local `#/a/b/c` reference.
fn resolve<'v>(root: &'v Value, reference: &str, at: &str) -> Result<&'v Value, Error> {
    let pointer = reference.strip_prefix("#/").ok_or_else(|| {
        Error::at(
            at,
            format!("only local references (`#/...`) are supported, found `{reference}`"),
        )
    })?;
    let mut node = root;
    for part in pointer.split('/') {
        let part = part.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Mapping(map) => map.get(part.as_str()),
            _ => None,
        }
        .ok_or_else(|| Error::at(at, format!("`$ref: {reference}` does not resolve")))?;
    }
    Ok(node)
}

/// Follows one level of `$ref` (parameters, responses).
fn deref<'v>(root: &'v Value, value: &'v Value, at: &str) -> Result<(&'v Value, String), Error> {
    if let Value::Mapping(map) = value {
        if let Some(Value::String(reference)) = map.get("$ref") {
            if map.len() != 1 {
                return Err(Error::at(
                    at,
                    "a `$ref` here must stand alone (no sibling keys)".to_owned(),
                ));
            }
            let target = resolve(root, reference, at)?;
            return Ok((target, reference.trim_start_matches("#/").replace('/', ".")));
        }
    }
    Ok((value, at.to_owned()))
}

fn check_type_name(name: &str, at: &str) -> Result<(), Error> {
    let ok = name.to_upper_camel_case() == name && syn::parse_str::<syn::Ident>(name).is_ok();
    if ok && name != "Other" {
        Ok(())
    } else {
        Err(Error::at(
            at,
            format!("`{name}` is not usable as a Rust type name (UpperCamelCase identifier)"),
        ))
    }
}

/// `name` if it is an identifier, else `name_` (keywords such as `self`), else an error.
fn field_ident(name: &str, at: &str) -> Result<String, Error> {
    if syn::parse_str::<syn::Ident>(name).is_ok() {
        return Ok(name.to_owned());
    }
    let escaped = format!("{name}_");
    if syn::parse_str::<syn::Ident>(&escaped).is_ok() {
        return Ok(escaped);
    }
    Err(Error::at(
        at,
        format!("`{name}` is not usable as a Rust field name; set `x-rust-name`"),
    ))
}

fn required_doc(obj: &Obj<'_>, what: &str) -> Result<String, Error> {
    let doc = obj.str("description")?.map(str::trim).unwrap_or_default();
    if doc.is_empty() {
        return Err(Error::at(
            obj.at(),
            format!("{what} needs a `description`: it becomes the public doc comment"),
        ));
    }
    Ok(doc.to_owned())
}

fn parse_schema(name: &str, value: &Value, at: &str, names: &Names<'_>) -> Result<Schema, Error> {
    let obj = Obj::new(value, at)?;
    // Unknown keys first, so `oneOf` is reported as what it is rather than as a missing type.
    obj.only(&[
        "type",
        "description",
        "enum",
        "x-enum-descriptions",
        "properties",
        "required",
        "anyOf",
        "x-non-exhaustive",
        "example",
    ])?;
    match obj.str("type")? {
        Some("string") if obj.has("enum") => parse_enum(name, &obj).map(Schema::Enum),
        Some("object") => parse_struct(name, &obj, names).map(Schema::Struct),
        other => Err(Error::at(
            at,
            format!(
                "schema `{name}`: only `type: object` and string enums are generated, found \
                 type {other:?}; mark it `x-basiq-handwritten: true` if it is implemented by hand"
            ),
        )),
    }
}

fn parse_enum(name: &str, obj: &Obj<'_>) -> Result<EnumDef, Error> {
    obj.only(&[
        "type",
        "description",
        "enum",
        "x-enum-descriptions",
        "example",
    ])?;
    let doc = required_doc(obj, &format!("enum `{name}`"))?;
    let values = obj
        .str_list("enum")?
        .ok_or_else(|| Error::at(obj.at(), "missing `enum`".to_owned()))?;
    let docs_value = obj.get("x-enum-descriptions").ok_or_else(|| {
        Error::at(
            obj.at(),
            format!("enum `{name}` needs `x-enum-descriptions` (one doc line per value)"),
        )
    })?;
    let docs = Obj::new(docs_value, obj.child("x-enum-descriptions"))?;
    docs.only(&values)?;
    let mut seen = HashMap::new();
    let mut variants = Vec::new();
    for wire in values {
        let ident = wire.to_upper_camel_case();
        let valid = !ident.is_empty()
            && ident != "Other"
            && !ident.starts_with(|c: char| c.is_ascii_digit())
            && syn::parse_str::<syn::Ident>(&ident).is_ok();
        if !valid {
            return Err(Error::at(
                obj.at(),
                format!("enum value {wire:?} does not make a usable variant name ({ident:?})"),
            ));
        }
        if let Some(previous) = seen.insert(ident.clone(), wire) {
            return Err(Error::at(
                obj.at(),
                format!("enum values {previous:?} and {wire:?} both become variant `{ident}`"),
            ));
        }
        let doc = docs
            .str(wire)?
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                Error::at(
                    docs.at(),
                    format!("missing description for enum value {wire:?}"),
                )
            })?;
        variants.push(Variant {
            wire: wire.to_owned(),
            ident,
            doc: doc.to_owned(),
        });
    }
    Ok(EnumDef {
        name: name.to_owned(),
        doc,
        variants,
    })
}

fn parse_struct(name: &str, obj: &Obj<'_>, names: &Names<'_>) -> Result<StructDef, Error> {
    obj.only(&[
        "type",
        "description",
        "properties",
        "required",
        "anyOf",
        "x-non-exhaustive",
        "example",
    ])?;
    let doc = required_doc(obj, &format!("schema `{name}`"))?;
    let required: Vec<&str> = obj.str_list("required")?.unwrap_or_default();
    let mut fields = Vec::new();
    let mut rust_names = HashMap::new();
    for prop in obj.entries("properties")? {
        let field = parse_field(&prop.key, prop.value, &prop.at, &required, names)?;
        if let Some(previous) = rust_names.insert(field.rust.clone(), field.wire.clone()) {
            return Err(Error::at(
                &prop.at,
                format!(
                    "properties `{previous}` and `{}` both become field `{}`",
                    field.wire, field.rust
                ),
            ));
        }
        fields.push(field);
    }
    for r in &required {
        if !fields.iter().any(|f| f.wire == *r) {
            return Err(Error::at(
                &obj.child("required"),
                format!("`{r}` is required but not a property"),
            ));
        }
    }
    let mut any_of = Vec::new();
    if let Some(groups) = obj.seq("anyOf")? {
        for (i, group) in groups.iter().enumerate() {
            let group = Obj::new(group, format!("{}[{i}]", obj.child("anyOf")))?;
            group.only(&["required"])?;
            let members = group.str_list("required")?.unwrap_or_default();
            if members.is_empty() {
                return Err(Error::at(
                    group.at(),
                    "each `anyOf` entry must be `{required: [...]}` with at least one property"
                        .to_owned(),
                ));
            }
            let mut rust = Vec::new();
            for m in members {
                let field = fields.iter().find(|f| f.wire == m).ok_or_else(|| {
                    Error::at(group.at(), format!("`{m}` is not a property of `{name}`"))
                })?;
                if field.required || field.ty != Ty::String {
                    return Err(Error::at(
                        group.at(),
                        format!(
                            "`anyOf` required-groups are only supported over optional string \
                             properties; `{m}` is not one"
                        ),
                    ));
                }
                rust.push(field.rust.clone());
            }
            any_of.push(rust);
        }
    }
    Ok(StructDef {
        name: name.to_owned(),
        doc,
        fields,
        any_of,
        non_exhaustive: obj.bool("x-non-exhaustive")?,
    })
}

fn parse_field(
    wire: &str,
    value: &Value,
    at: &str,
    required: &[&str],
    names: &Names<'_>,
) -> Result<Field, Error> {
    let obj = Obj::new(value, at)?;
    obj.only(&[
        "$ref",
        "type",
        "format",
        "description",
        "items",
        "enum",
        "minimum",
        "nullable",
        "example",
        "x-rust-type",
        "x-rust-name",
        "x-aliases",
        "x-accept-number",
        "x-accept-single",
        "x-accept-list",
    ])?;
    let doc = required_doc(&obj, &format!("property `{wire}`"))?;
    let rust = match obj.str("x-rust-name")? {
        Some(name) => field_ident(name, at)?,
        None => field_ident(&wire.to_snake_case(), at)?,
    };
    let aliases = obj
        .str_list("x-aliases")?
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let ty = parse_ty(&obj, names)?;
    let required = required.contains(&wire);
    if required && ty == Ty::Timestamp {
        return Err(Error::at(
            at,
            "a required timestamp is not supported: Basiq sends `\"\"` or omits dates, so \
             timestamps are optional fields"
                .to_owned(),
        ));
    }
    if required && matches!(ty, Ty::Decimal | Ty::Json) {
        return Err(Error::at(
            at,
            "a required `x-rust-type: Decimal` or `JsonValue` is not supported: Basiq omits or \
             nulls amounts and free-form objects, so they are optional fields"
                .to_owned(),
        ));
    }
    let accept_number = obj.bool("x-accept-number")?.unwrap_or(false);
    if accept_number && (required || ty != Ty::String) {
        return Err(Error::at(
            at,
            "`x-accept-number` is only supported on optional plain strings".to_owned(),
        ));
    }
    let accept_single = obj.bool("x-accept-single")?.unwrap_or(false);
    if accept_single && !matches!(ty, Ty::Array(_)) {
        return Err(Error::at(
            at,
            "`x-accept-single` is only supported on arrays".to_owned(),
        ));
    }
    let accept_list = obj.bool("x-accept-list")?.unwrap_or(false);
    if accept_list && (required || !matches!(ty, Ty::Ref(_))) {
        return Err(Error::at(
            at,
            "`x-accept-list` is only supported on optional `$ref` objects".to_owned(),
        ));
    }
    Ok(Field {
        wire: wire.to_owned(),
        rust,
        doc,
        ty,
        required,
        aliases,
        accept_number,
        accept_single,
        accept_list,
    })
}

/// The type of a property, parameter schema or array item.
fn parse_ty(obj: &Obj<'_>, names: &Names<'_>) -> Result<Ty, Error> {
    let at = obj.at();
    if let Some(reference) = obj.str("$ref")? {
        for key in ["type", "format", "items", "x-rust-type"] {
            if obj.has(key) {
                return Err(Error::at(
                    at,
                    format!("`{key}` next to `$ref` is not supported"),
                ));
            }
        }
        return names.generated_ref(reference, at).map(Ty::Ref);
    }
    let rust_type = obj.str("x-rust-type")?;
    // `x-rust-type: JsonValue` without a `type`: any JSON value (a string, a list, an
    // object…), for fields whose type Basiq itself varies (a report filter's `value`).
    if rust_type == Some("JsonValue") && !obj.has("type") {
        if obj.has("enum") || obj.has("items") || obj.has("format") {
            return Err(Error::at(
                at,
                "a free-form `JsonValue` takes no `enum`, `items` or `format`".to_owned(),
            ));
        }
        return Ok(Ty::Json);
    }
    let ty = obj
        .str("type")?
        .ok_or_else(|| Error::at(at, "needs a `type` or a `$ref`".to_owned()))?;
    let format = obj.str("format")?;
    let base = match (ty, format) {
        ("string", None | Some("email")) => Ty::String,
        ("string", Some("date-time")) => Ty::Timestamp,
        ("boolean", None) => Ty::Bool,
        ("integer", None | Some("int32") | Some("int64")) => {
            if obj.number("minimum")?.is_some_and(|m| m >= 0.0) {
                Ty::U64
            } else {
                Ty::I64
            }
        }
        ("number", _) => {
            return Err(Error::at(
                at,
                "`type: number` is not supported: Basiq sends money as decimal strings, and \
                 floats must never hold money; use `type: string`"
                    .to_owned(),
            ))
        }
        ("array", None) => {
            let items = obj
                .get("items")
                .ok_or_else(|| Error::at(at, "an array needs `items`".to_owned()))?;
            let items = Obj::new(items, obj.child("items"))?;
            items.only(&[
                "$ref",
                "type",
                "format",
                "enum",
                "description",
                "x-rust-type",
            ])?;
            let item = parse_ty(&items, names)?;
            if matches!(item, Ty::Array(_) | Ty::Timestamp | Ty::Decimal) {
                return Err(Error::at(
                    items.at(),
                    "arrays of arrays, of timestamps or of decimals are not supported".to_owned(),
                ));
            }
            Ty::Array(Box::new(item))
        }
        ("object", None) if rust_type == Some("JsonValue") => {
            if obj.has("enum") || obj.has("items") {
                return Err(Error::at(
                    at,
                    "a free-form `JsonValue` object takes no `enum` or `items`".to_owned(),
                ));
            }
            return Ok(Ty::Json);
        }
        ("object", _) => {
            return Err(Error::at(
                at,
                "inline objects are not supported: name the schema under \
                 components.schemas and use `$ref` (or, for a free-form object whose shape \
                 Basiq does not document, `x-rust-type: JsonValue`)"
                    .to_owned(),
            ))
        }
        (t, f) => {
            return Err(Error::at(
                at,
                format!("unsupported type/format combination {t:?}/{f:?}"),
            ))
        }
    };
    if obj.has("enum") {
        return Err(Error::at(
            at,
            "inline enums are not supported: name the enum under components.schemas so it \
             gets a type"
                .to_owned(),
        ));
    }
    match rust_type {
        None => Ok(base),
        Some("String") if base == Ty::String => Ok(Ty::String),
        Some("OffsetDateTime") if matches!(base, Ty::String | Ty::Timestamp) => Ok(Ty::Timestamp),
        Some(id) if ID_TYPES.contains(&id) && base == Ty::String => Ok(Ty::Id(id.to_owned())),
        Some("Decimal") if base == Ty::String => Ok(Ty::Decimal),
        Some(core) if base == Ty::String && CORE_TYPES.iter().any(|(name, _)| *name == core) => {
            Ok(Ty::Core(core.to_owned()))
        }
        Some(other) => Err(Error::at(
            at,
            format!(
                "unsupported `x-rust-type: {other}` for this type (supported on strings: \
                 String, OffsetDateTime, Decimal, {}, {}; on `type: object`: JsonValue)",
                ID_TYPES.join(", "),
                CORE_TYPES
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_operation(
    root: &Value,
    path: &str,
    method: &str,
    op: &Obj<'_>,
    shared_params: &[Value],
    shared_at: &str,
    names: &Names<'_>,
) -> Result<Operation, Error> {
    let at = op.at().to_owned();
    op.only(&[
        "operationId",
        "x-operation-name",
        "x-idempotent",
        "x-basiq-handwritten",
        "x-rust-output",
        "x-sdk",
        "x-sdk-query",
        "tags",
        "summary",
        "description",
        "parameters",
        "requestBody",
        "responses",
    ])?;
    let name = match op.str("x-operation-name")? {
        Some(name) => name.to_owned(),
        None => op.req_str("operationId")?.to_upper_camel_case(),
    };
    check_type_name(&name, &at)?;
    let summary = op
        .str("summary")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::at(
                &at,
                "an operation needs a `summary`: it becomes the doc comment".to_owned(),
            )
        })?
        .to_owned();
    let description = op.str("description")?.map(|d| d.trim().to_owned());
    let idempotent = op.bool("x-idempotent")?.ok_or_else(|| {
        Error::at(
            &at,
            "`x-idempotent: true|false` is required: executors only repeat idempotent calls, \
             so this must be decided, not defaulted"
                .to_owned(),
        )
    })?;

    // Path-level parameters, then operation-level ones (which override by name and place).
    let mut raw: Vec<(Obj<'_>, String)> = Vec::new();
    let own_at = op.child("parameters");
    let own = op.seq("parameters")?.unwrap_or(&[]);
    for (list, list_at) in [(shared_params, shared_at), (own, own_at.as_str())] {
        for (i, value) in list.iter().enumerate() {
            let item_at = format!("{list_at}[{i}]");
            let (target, target_at) = deref(root, value, &item_at)?;
            let param = Obj::new(target, target_at)?;
            let key = format!("{}:{}", param.req_str("in")?, param.req_str("name")?);
            raw.retain(|(_, k)| *k != key);
            raw.push((param, key));
        }
    }
    let mut path_params = Vec::new();
    let mut query_params = Vec::new();
    for (param, _) in &raw {
        param.only(&[
            "name",
            "in",
            "required",
            "description",
            "schema",
            "x-rust-type",
            "x-context",
            "example",
        ])?;
        let wire = param.req_str("name")?;
        let place = param.req_str("in")?;
        let doc = required_doc(param, &format!("parameter `{wire}`"))?;
        let rust = field_ident(&wire.to_snake_case(), param.at())?;
        let schema = param
            .get("schema")
            .ok_or_else(|| Error::at(param.at(), "a parameter needs a `schema`".to_owned()))?;
        let schema = Obj::new(schema, param.child("schema"))?;
        schema.only(&["type", "format", "enum", "example", "minimum", "maximum"])?;
        let bounds = match schema.req_str("type")? {
            "string" if !schema.has("minimum") && !schema.has("maximum") => None,
            "integer" if place == "query" => {
                let min = schema.number("minimum")?;
                let max = schema.number("maximum")?;
                match (min, max) {
                    (Some(min), Some(max))
                        if min >= 0.0
                            && min <= max
                            && max <= f64::from(u32::MAX)
                            && min.fract() == 0.0
                            && max.fract() == 0.0 =>
                    {
                        // Exact: both are whole numbers within u32, checked just above.
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Some((min as u64, max as u64))
                    }
                    _ => {
                        return Err(Error::at(
                            schema.at(),
                            format!(
                                "integer query parameter `{wire}` needs whole `minimum` and \
                                 `maximum` within 0..=4294967295 (it becomes an `Option<u32>` \
                                 checked before sending)"
                            ),
                        ))
                    }
                }
            }
            _ => {
                return Err(Error::at(
                    schema.at(),
                    format!(
                        "parameter `{wire}`: only plain `type: string` parameters and bounded \
                         `type: integer` query parameters are supported"
                    ),
                ))
            }
        };
        if schema.has("enum") || schema.has("format") {
            return Err(Error::at(
                schema.at(),
                "parameters with `enum` or `format` are not supported".to_owned(),
            ));
        }
        let required = param.bool("required")?.unwrap_or(false);
        let rust_type = param.str("x-rust-type")?;
        let context = param.str("x-context")?.map(str::to_owned);
        match place {
            "path" => {
                // `String` path parameters are checked with the id rules in `request()`.
                let id = rust_type
                    .filter(|t| ID_TYPES.contains(t) || *t == "String")
                    .ok_or_else(|| {
                        Error::at(
                            param.at(),
                            format!(
                                "path parameter `{wire}` needs `x-rust-type` set to a validated \
                                 id ({}) or `String` (checked with the same rules when the \
                                 request is built), so a bad id fails before any request exists",
                                ID_TYPES.join(", ")
                            ),
                        )
                    })?;
                if !required {
                    return Err(Error::at(
                        param.at(),
                        "path parameters must be `required: true`".to_owned(),
                    ));
                }
                if let Some(ctx) = &context {
                    let expected = match ctx.as_str() {
                        "user" => "UserId",
                        "job" => "JobId",
                        "connection" => "ConnectionId",
                        other => {
                            return Err(Error::at(
                                param.at(),
                                format!(
                                    "unsupported `x-context: {other}` (supported: user, job, \
                                     connection)"
                                ),
                            ))
                        }
                    };
                    if id != expected {
                        return Err(Error::at(
                            param.at(),
                            format!("`x-context: {ctx}` needs `x-rust-type: {expected}`"),
                        ));
                    }
                }
                path_params.push(Param {
                    wire: wire.to_owned(),
                    rust,
                    doc,
                    ty: if id == "String" {
                        Ty::String
                    } else {
                        Ty::Id(id.to_owned())
                    },
                    context,
                    bounds: None,
                    required: true,
                });
            }
            "query" => {
                // Each query parameter becomes a builder method of the same name.
                if RESERVED_METHODS.contains(&rust.as_str()) {
                    return Err(Error::at(
                        param.at(),
                        format!(
                            "query parameter `{wire}` would become builder method `{rust}`, \
                             which clashes with an operation method"
                        ),
                    ));
                }
                if (required && bounds.is_some()) || rust_type.is_some() || context.is_some() {
                    return Err(Error::at(
                        param.at(),
                        "only plain-string query parameters (optional or required) and optional \
                         bounded integers are supported (no `x-rust-type` or `x-context`)"
                            .to_owned(),
                    ));
                }
                query_params.push(Param {
                    wire: wire.to_owned(),
                    rust,
                    doc,
                    ty: if bounds.is_some() {
                        Ty::U32
                    } else {
                        Ty::String
                    },
                    context: None,
                    bounds,
                    required,
                });
            }
            other => {
                return Err(Error::at(
                    param.at(),
                    format!(
                        "`in: {other}` parameters are not generated; mark the operation \
                         `x-basiq-handwritten: true` and implement it by hand"
                    ),
                ))
            }
        }
    }

    let segments = parse_path(path, &path_params, &at)?;
    let body = parse_body(root, op, names)?;
    let Responses {
        success,
        output,
        none_on,
    } = parse_responses(root, op, names)?;
    let rust_output = match op.str("x-rust-output")? {
        None => None,
        Some(name) if RUST_OUTPUTS.iter().any(|(known, _)| *known == name) => {
            if output.is_none() {
                return Err(Error::at(
                    &at,
                    "`x-rust-output` needs the 2xx responses to document their body".to_owned(),
                ));
            }
            if none_on.is_some() {
                return Err(Error::at(
                    &at,
                    "`x-rust-output` does not support a bodiless 204 beside bodied answers"
                        .to_owned(),
                ));
            }
            Some(name.to_owned())
        }
        Some(other) => {
            return Err(Error::at(
                &at,
                format!(
                    "unsupported `x-rust-output: {other}` (supported: {})",
                    RUST_OUTPUTS
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    };

    let sdk = match op.str("x-sdk")? {
        None => None,
        Some(text) => Some(parse_sdk(text, &at)?),
    };
    let sdk = match (sdk, op.str("x-sdk-query")?) {
        (sdk, None) => sdk,
        (Some(mut sdk), Some(query)) => {
            check_type_name(query, &at)?;
            sdk.query = Some(query.to_owned());
            Some(sdk)
        }
        (None, Some(_)) => {
            return Err(Error::at(&at, "`x-sdk-query` needs `x-sdk`".to_owned()));
        }
    };

    let mut field_names = BTreeSet::new();
    for field in path_params
        .iter()
        .chain(&query_params)
        .map(|p| p.rust.as_str())
        .chain(body.as_ref().map(|_| "body"))
    {
        if !field_names.insert(field) {
            return Err(Error::at(
                &at,
                format!("two inputs both become field `{field}`"),
            ));
        }
    }

    Ok(Operation {
        name,
        method: method.to_uppercase(),
        path: path.to_owned(),
        summary,
        description,
        idempotent,
        segments,
        path_params,
        query_params,
        body,
        success,
        output,
        none_on,
        rust_output,
        sdk,
    })
}

/// `x-sdk: accessor.method`, both snake_case identifiers.
fn parse_sdk(text: &str, at: &str) -> Result<SdkMethod, Error> {
    let bad = || {
        Error::at(
            at,
            format!("`x-sdk: {text}` must be `accessor.method`, both snake_case identifiers"),
        )
    };
    let (accessor, method) = text.split_once('.').ok_or_else(bad)?;
    for part in [accessor, method] {
        if part.is_empty()
            || part.to_snake_case() != part
            || !part.starts_with(|c: char| c.is_ascii_lowercase())
        {
            return Err(bad());
        }
        field_ident(part, at)?;
    }
    Ok(SdkMethod {
        accessor: accessor.to_owned(),
        method: method.to_owned(),
        query: None,
    })
}

fn parse_path(path: &str, params: &[Param], at: &str) -> Result<Vec<Segment>, Error> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| Error::at(at, format!("path {path:?} must start with `/`")))?;
    let mut segments = Vec::new();
    let mut used = BTreeSet::new();
    for part in rest.split('/') {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let param = params.iter().find(|p| p.wire == name).ok_or_else(|| {
                Error::at(
                    at,
                    format!("path template `{{{name}}}` has no matching path parameter"),
                )
            })?;
            used.insert(name);
            segments.push(Segment::Param(param.rust.clone()));
        } else if part.is_empty() || part.contains(['{', '}']) {
            return Err(Error::at(
                at,
                format!(
                    "path segment {part:?} is not supported (empty, or a template that is not \
                     a whole segment)"
                ),
            ));
        } else {
            segments.push(Segment::Literal(part.to_owned()));
        }
    }
    if let Some(unused) = params.iter().find(|p| !used.contains(p.wire.as_str())) {
        return Err(Error::at(
            at,
            format!("path parameter `{}` does not appear in {path}", unused.wire),
        ));
    }
    Ok(segments)
}

fn parse_body(root: &Value, op: &Obj<'_>, names: &Names<'_>) -> Result<Option<Body>, Error> {
    let Some(value) = op.get("requestBody") else {
        return Ok(None);
    };
    let at = op.child("requestBody");
    let (value, at) = deref(root, value, &at)?;
    let body = Obj::new(value, at)?;
    body.only(&["description", "required", "content"])?;
    if body.bool("required")? != Some(true) {
        return Err(Error::at(
            body.at(),
            "optional request bodies are not supported; set `required: true`".to_owned(),
        ));
    }
    let doc = required_doc(&body, "a request body")?;
    let schema = json_schema_ref(&body, names)?.ok_or_else(|| {
        Error::at(
            body.at(),
            "a request body needs `content.application/json.schema`".to_owned(),
        )
    })?;
    Ok(Some(Body { schema, doc }))
}

/// The `$ref` schema of `content: {application/json: {schema}}`, if there is content.
fn json_schema_ref(obj: &Obj<'_>, names: &Names<'_>) -> Result<Option<String>, Error> {
    let content = obj.entries("content")?;
    let Some(first) = content.first() else {
        return Ok(None);
    };
    if content.len() != 1 || first.key != "application/json" {
        return Err(Error::at(
            &obj.child("content"),
            "only `application/json` content is generated; mark the operation \
             `x-basiq-handwritten: true` for other media types"
                .to_owned(),
        ));
    }
    let media = Obj::new(first.value, first.at.clone())?;
    media.only(&["schema", "example", "examples"])?;
    let schema = media
        .get("schema")
        .ok_or_else(|| Error::at(media.at(), "missing `schema`".to_owned()))?;
    let schema = Obj::new(schema, media.child("schema"))?;
    schema.only(&["$ref"])?;
    let reference = schema.req_str("$ref")?;
    names.generated_ref(reference, schema.at()).map(Some)
}

fn parse_responses(root: &Value, op: &Obj<'_>, names: &Names<'_>) -> Result<Responses, Error> {
    let entries = op.entries("responses")?;
    let mut success = Vec::new();
    let mut outputs: Vec<(u16, Option<String>)> = Vec::new();
    for entry in &entries {
        let (value, at) = deref(root, entry.value, &entry.at)?;
        let response = Obj::new(value, at)?;
        response.only(&["description", "content", "headers"])?;
        required_doc(&response, "a response")?;
        if entry.key == "default" {
            continue;
        }
        let status: u16 = entry
            .key
            .parse()
            .ok()
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| {
                Error::at(
                    &entry.at,
                    format!("`{}` is not an HTTP status code", entry.key),
                )
            })?;
        if (200..300).contains(&status) {
            success.push(status);
            outputs.push((status, json_schema_ref(&response, names)?));
        }
    }
    if success.is_empty() {
        return Err(Error::at(
            &op.child("responses"),
            "an operation needs at least one 2xx response".to_owned(),
        ));
    }
    success.sort_unstable();
    // A bodiless 204 beside bodied 2xx answers means "nothing to return": `Option` output.
    let none_on = outputs
        .iter()
        .any(|(_, o)| o.is_some())
        .then(|| outputs.iter().position(|(s, o)| *s == 204 && o.is_none()))
        .flatten()
        .map(|at| outputs.remove(at).0);
    let output = outputs[0].1.clone();
    if let Some((status, other)) = outputs.iter().find(|(_, o)| *o != output) {
        return Err(Error::at(
            &op.child("responses"),
            format!(
                "2xx responses disagree on the body: {} has {:?}, {status} has {other:?}; one \
                 operation has one output type",
                outputs[0].0, output
            ),
        ));
    }
    Ok(Responses {
        success,
        output,
        none_on,
    })
}

/// An operation's 2xx answers, as [`Operation`] keeps them.
struct Responses {
    success: Vec<u16>,
    output: Option<String>,
    none_on: Option<u16>,
}

/// `x-accept-list` reads an object (or a list of one object): its `$ref` must be a struct.
fn check_accept_list(api: &Api) -> Result<(), Error> {
    for schema in &api.schemas {
        let Schema::Struct(def) = schema else {
            continue;
        };
        for field in def.fields.iter().filter(|f| f.accept_list) {
            let Ty::Ref(target) = &field.ty else { continue };
            if !matches!(
                api.schemas.iter().find(|s| s.name() == target),
                Some(Schema::Struct(_))
            ) {
                return Err(Error::at(
                    &format!("components.schemas.{}.properties.{}", def.name, field.wire),
                    format!("`x-accept-list` needs an object schema, and `{target}` is not one"),
                ));
            }
        }
    }
    Ok(())
}

/// Request bodies are built by users: they must be structs.
fn check_bodies(api: &Api) -> Result<(), Error> {
    for op in &api.operations {
        for schema in op.body.iter().map(|b| &b.schema).chain(&op.output) {
            if !matches!(
                api.schemas.iter().find(|s| s.name() == schema),
                Some(Schema::Struct(_))
            ) {
                return Err(Error::at(
                    &format!("paths.{}", op.path),
                    format!("`{schema}` is used as a request or response body but is not an object schema"),
                ));
            }
        }
    }
    Ok(())
}
