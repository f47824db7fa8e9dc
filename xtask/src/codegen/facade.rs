//! Emits `crates/basiq/src/endpoints.rs`: the facade's plain endpoint methods for every
//! operation with `x-sdk: accessor.method`, as one `macro_rules!` that both clients invoke
//! (`async fn … .await` and plain `fn`), like the hand-written `resources!`.
//!
//! The file is text, not `quote!` output: prettyplease cannot lay out a macro body, and the
//! text below is laid out the way rustfmt would, so it reads like hand-written code. It is
//! still deterministic (document order only) and `#[rustfmt::skip]`ped in `lib.rs`.

use std::fmt::Write as _;

use heck::ToUpperCamelCase;

use super::emit::{doc_lines, header};
use super::spec::{Api, Operation, Ty, RUST_OUTPUTS};
use super::Error;

const MODULE_DOC: &str = "\
Plain endpoint methods generated from `x-sdk` in our OpenAPI document, for both clients.

Each method validates its ids (a path trick is an `Error::InvalidId` before any request exists),
builds one `basiq::operations` value and hands it to the client's `execute`. Lists answer
one page; follow `links.next` with `basiq::pagination::NextPage`. Optional query parameters
other than `filter` are set on the operation itself (`client.execute(op.limit(100))`).";

/// One accessor (`client.events()`) and its operations, in document order.
struct Resource<'a> {
    accessor: &'a str,
    ops: Vec<&'a Operation>,
}

fn resources(api: &Api) -> Vec<Resource<'_>> {
    let mut out: Vec<Resource<'_>> = Vec::new();
    for op in &api.operations {
        let Some(sdk) = &op.sdk else { continue };
        match out.iter_mut().find(|r| r.accessor == sdk.accessor) {
            Some(resource) => resource.ops.push(op),
            None => out.push(Resource {
                accessor: &sdk.accessor,
                ops: vec![op],
            }),
        }
    }
    out
}

fn push_doc(out: &mut String, indent: &str, text: &str) {
    for line in doc_lines(text) {
        let _ = writeln!(out, "{indent}///{line}");
    }
}

/// Generates `endpoints.rs`.
pub fn endpoints(api: &Api, source: &str) -> Result<String, Error> {
    let resources = resources(api);
    let mut seen = std::collections::BTreeSet::new();
    for r in &resources {
        for op in &r.ops {
            let method = &op.sdk.as_ref().map_or("", |s| s.method.as_str());
            if !seen.insert(format!("{}.{method}", r.accessor)) {
                return Err(Error::at(
                    &op.name,
                    format!("`x-sdk: {}.{method}` is used twice", r.accessor),
                ));
            }
        }
    }
    let mut out = header(source);
    out.push('\n');
    for line in doc_lines(MODULE_DOC) {
        let _ = writeln!(out, "//!{line}");
    }
    out.push('\n');
    out.push_str(
        "/// Stamps the generated resource wrappers and their accessors for one client flavour\n\
         /// (the async / await tokens), with `resource!` from `resources.rs`.\n\
         macro_rules! generated_resources {\n    \
         (client = $client:ident, [$($async:tt)*], [$($await:tt)*]) => {\n",
    );
    let i2 = "        ";
    let i3 = "            ";
    let i4 = "                ";
    let _ = writeln!(out, "{i2}impl $client {{");
    for (n, r) in resources.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let ty = r.accessor.to_upper_camel_case();
        push_doc(&mut out, i3, &resource_doc(r));
        let _ = writeln!(out, "{i3}pub fn {}(&self) -> {ty}<'_> {{", r.accessor);
        let _ = writeln!(out, "{i4}{ty} {{ client: self }}");
        let _ = writeln!(out, "{i3}}}");
    }
    let _ = writeln!(out, "{i2}}}");
    for r in &resources {
        let ty = r.accessor.to_upper_camel_case();
        out.push('\n');
        let _ = writeln!(out, "{i2}$crate::resources::resource! {{");
        let _ = writeln!(out, "{i3}$client,");
        push_doc(&mut out, i3, &resource_doc(r));
        let _ = writeln!(out, "{i3}{ty}");
        let _ = writeln!(out, "{i2}}}");
        out.push('\n');
        let _ = writeln!(out, "{i2}impl<'a> {ty}<'a> {{");
        let mut first = true;
        for op in &r.ops {
            let sdk = op.sdk.as_ref().map_or("", |s| s.method.as_str());
            if !first {
                out.push('\n');
            }
            first = false;
            emit_method(&mut out, op, sdk, None)?;
            let has_query = op.sdk.as_ref().is_some_and(|s| s.query.is_some());
            if !has_query
                && op
                    .query_params
                    .iter()
                    .any(|q| q.wire == "filter" && !q.required)
            {
                out.push('\n');
                emit_method(&mut out, op, &format!("{sdk}_filtered"), Some("filter"))?;
            }
        }
        let _ = writeln!(out, "{i2}}}");
    }
    out.push_str("    };\n}\n\npub(crate) use generated_resources;\n");
    Ok(out)
}

fn resource_doc(r: &Resource<'_>) -> String {
    let methods: Vec<String> = r
        .ops
        .iter()
        .filter_map(|op| op.sdk.as_ref())
        .map(|s| format!("`{}`", s.method))
        .collect();
    format!("`client.{}()`: {}.", r.accessor, methods.join(", "))
}

fn emit_method(
    out: &mut String,
    op: &Operation,
    name: &str,
    with_query: Option<&str>,
) -> Result<(), Error> {
    let i3 = "            ";
    let i4 = "                ";
    let i5 = "                    ";
    let mut text = format!("`{} {}`: {}.", op.method, op.path, op.summary);
    if let Some(q) = with_query {
        text.push_str(&format!(
            " With the `{q}` query parameter (a Basiq filter expression, encoded by the SDK)."
        ));
    }
    if let Some(description) = &op.description {
        text.push_str("\n\n");
        text.push_str(description);
    }
    if !op.idempotent {
        text.push_str("\n\nNot idempotent: never repeated after an ambiguous failure.");
    }
    text.push_str(&format!(
        "\n\nOperation [`{0}`]($crate::operations::{0}).",
        op.name
    ));
    if !op.path_params.is_empty() {
        let ids: Vec<String> = op
            .path_params
            .iter()
            .map(|p| match &p.ty {
                Ty::Id(id) => format!("`{}` ([`{id}`]($crate::id::{id}))", p.rust),
                _ => format!("`{}`", p.rust),
            })
            .collect();
        text.push_str(&format!(
            " Ids: {}, checked before any request exists.",
            ids.join(", ")
        ));
    }
    push_doc(out, i3, &text);
    let query = op.sdk.as_ref().and_then(|s| s.query.as_deref());
    let mut args = Vec::new();
    let mut converts = Vec::new();
    let mut ctor = Vec::new();
    for p in &op.path_params {
        match &p.ty {
            Ty::Id(id) => {
                args.push(format!(
                    "{}: impl $crate::id::IntoId<$crate::id::{id}>",
                    p.rust
                ));
                converts.push(format!(
                    "let {0} = $crate::id::IntoId::into_id({0})?;",
                    p.rust
                ));
            }
            Ty::String => {
                args.push(format!("{}: impl Into<String>", p.rust));
                converts.push(format!("let {0}: String = {0}.into();", p.rust));
            }
            other => {
                return Err(Error::at(
                    &op.name,
                    format!("generator bug: path parameter of type {other:?}"),
                ))
            }
        }
        ctor.push(p.rust.clone());
    }
    if let Some(body) = &op.body {
        args.push(format!("body: $crate::models::{}", body.schema));
        ctor.push("body".to_owned());
    }
    if let Some(query) = query {
        args.push(format!("query: $crate::{query}"));
    } else {
        for q in op.query_params.iter().filter(|q| q.required) {
            args.push(format!("{}: impl Into<String>", q.rust));
            ctor.push(q.rust.clone());
        }
    }
    if let Some(q) = with_query {
        args.push(format!("{q}: impl Into<String>"));
    }
    let output = match (&op.rust_output, &op.output) {
        (Some(name), _) => {
            let module = RUST_OUTPUTS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, m)| *m)
                .ok_or_else(|| Error::at(&op.name, format!("generator bug: output `{name}`")))?;
            format!("$crate::{module}::{name}")
        }
        (None, Some(schema)) if op.none_on.is_some() => {
            format!("Option<$crate::models::{schema}>")
        }
        (None, Some(schema)) => format!("$crate::models::{schema}"),
        (None, None) => "()".to_owned(),
    };
    let _ = writeln!(out, "{i3}pub $($async)* fn {name}(");
    let _ = writeln!(out, "{i4}self,");
    for arg in &args {
        let _ = writeln!(out, "{i4}{arg},");
    }
    let _ = writeln!(out, "{i3}) -> Result<{output}, $crate::Error> {{");
    for c in &converts {
        let _ = writeln!(out, "{i4}{c}");
    }
    if op.method != "GET" {
        // Calls that change state leave one line with their ids (never a body: it may hold
        // personal data) for the operator.
        let mut fields: Vec<String> = op
            .path_params
            .iter()
            .map(|p| format!("{0} = %{0},", p.rust))
            .collect();
        fields.push(format!("{:?}", op.summary));
        let _ = writeln!(out, "{i4}::tracing::info!({});", fields.join(" "));
    }
    let mut op_expr = match query {
        Some(_) => format!("query.operation({})", ctor.join(", ")),
        None => format!("$crate::operations::{}::new({})", op.name, ctor.join(", ")),
    };
    if let Some(q) = with_query {
        op_expr.push_str(&format!(".{q}({q})"));
    }
    let _ = writeln!(out, "{i4}self.client");
    let _ = writeln!(out, "{i5}.execute({op_expr})");
    let _ = writeln!(out, "{i5}$($await)*");
    let _ = writeln!(out, "{i3}}}");
    Ok(())
}
