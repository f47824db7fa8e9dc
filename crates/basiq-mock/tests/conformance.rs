//! Every emulator route answers what our spec (`fixtures/openapi/basiq.yaml`) says Basiq
//! answers: each response body, success or error, is validated with a JSON-Schema validator
//! against the schema our document gives for that method, path and status, and a status the
//! document does not list is a failure too. The walk exercises every operation of the document
//! with a 2xx at least once (checked at the end), plus the usual errors.
//!
//! The document's schemas are OpenAPI 3.0, which is JSON Schema with three differences handled
//! here: `nullable: true` adds `null` to the type, `x-accept-number: true` adds `number`
//! (strings Basiq sometimes sends as numbers), and the other `x-…` vendor keys are dropped.
//! `$ref`s stay `#/components/schemas/…`, resolved inside the same root document.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use basiq_core::api::statements::Multipart;
use common::{connect, server_token};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

const SPEC: &str = include_str!("../../../fixtures/openapi/basiq.yaml");

/// OpenAPI 3.0 schema → JSON Schema (see the module docs).
fn to_json_schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k.starts_with("x-") || k == "nullable" || k == "example" {
                    continue;
                }
                out.insert(k.clone(), to_json_schema(v));
            }
            let mut extra = Vec::new();
            if map.get("nullable") == Some(&Value::Bool(true)) {
                extra.push("null");
            }
            if map.get("x-accept-number") == Some(&Value::Bool(true)) {
                extra.push("number");
            }
            if extra == ["null"] && out.contains_key("$ref") {
                // `$ref` + `nullable`: the referenced schema, or null.
                let reference = out.remove("$ref").unwrap_or_default();
                out.insert(
                    "anyOf".into(),
                    json!([{ "$ref": reference }, { "type": "null" }]),
                );
            } else if !extra.is_empty() {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    let mut types = vec![json!(t)];
                    types.extend(extra.iter().map(|e| json!(e)));
                    out.insert("type".into(), Value::Array(types));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

struct Spec {
    doc: Value,
    /// The converted schemas, as the root every `$ref` resolves in.
    components: Value,
}

impl Spec {
    fn load() -> Self {
        let doc: Value = serde_norway::from_str(SPEC).expect("our spec is YAML");
        let components =
            json!({ "components": { "schemas": to_json_schema(&doc["components"]["schemas"]) } });
        Self { doc, components }
    }

    /// Every `(METHOD, template)` the document lists.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_some() {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// The document's template for a concrete path: literals must match, `{…}` takes any
    /// segment; with several candidates, the one with the most literal segments wins
    /// (`/events/types` over `/events/{eventId}`).
    fn template(&self, method: &str, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.operations()
            .into_iter()
            .filter(|(m, _)| m == method)
            .filter_map(|(_, template)| {
                let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literals = 0;
                for (p, s) in parts.iter().zip(&segments) {
                    if p.starts_with('{') {
                        continue;
                    }
                    if p != s {
                        return None;
                    }
                    literals += 1;
                }
                Some((literals, template))
            })
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, t)| t)
    }

    /// The schema of the body for `status`, `Ok(None)` when the document says there is none,
    /// `Err` when the status is not documented.
    fn response_schema(
        &self,
        method: &str,
        template: &str,
        status: u16,
    ) -> Result<Option<Value>, String> {
        let op = &self.doc["paths"][template][method.to_lowercase()];
        let mut response = op["responses"]
            .get(status.to_string())
            .cloned()
            .ok_or_else(|| format!("{method} {template}: status {status} is not documented"))?;
        if let Some(r) = response.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            response = self.doc["components"]["responses"][name].clone();
        }
        Ok(response
            .get("content")
            .and_then(|c| c.get("application/json"))
            .map(|c| c["schema"].clone()))
    }
}

/// Sends requests, validates each answer, and remembers failures and coverage.
struct Checker {
    spec: Spec,
    base: String,
    token: String,
    http: reqwest::Client,
    failures: Vec<String>,
    covered: BTreeSet<(String, String)>,
    validated: usize,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

impl Checker {
    async fn send(&mut self, method: Method, path: &str, body: Body) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.token);
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(content_type, bytes) => req.header("content-type", content_type).body(bytes),
        };
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    self.failures
                        .push(format!("{method} {path}: {status}: body is not JSON ({e})"));
                    return (status, Value::Null);
                }
            }
        };
        let bare = path.split('?').next().unwrap_or(path);
        let Some(template) = self.spec.template(method.as_str(), bare) else {
            self.failures
                .push(format!("{method} {bare}: not an operation of our spec"));
            return (status, value);
        };
        if status.is_success() {
            self.covered.insert((method.to_string(), template.clone()));
        }
        match self
            .spec
            .response_schema(method.as_str(), &template, status.as_u16())
        {
            Err(e) => self.failures.push(e),
            Ok(None) if !bytes.is_empty() => self.failures.push(format!(
                "{method} {template}: {status} should have no body, got {value}"
            )),
            Ok(None) => {}
            Ok(Some(schema)) => {
                let mut root = self.spec.components.clone();
                if let Some(obj) = root.as_object_mut() {
                    if let Some(s) = schema.as_object() {
                        for (k, v) in to_json_schema(&Value::Object(s.clone()))
                            .as_object()
                            .into_iter()
                            .flatten()
                        {
                            obj.insert(k.clone(), v.clone());
                        }
                    }
                }
                match jsonschema::validator_for(&root) {
                    Err(e) => self
                        .failures
                        .push(format!("{method} {template}: bad schema: {e}")),
                    Ok(validator) => {
                        self.validated += 1;
                        for error in validator.iter_errors(&value) {
                            self.failures.push(format!(
                                "{method} {template} {status}: {error} at {}",
                                error.instance_path()
                            ));
                        }
                    }
                }
            }
        }
        (status, value)
    }

    async fn get(&mut self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Body::None).await
    }

    async fn post(&mut self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Body::Json(body)).await
    }

    async fn delete(&mut self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, Body::None).await
    }
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

#[tokio::test]
async fn every_response_matches_our_spec() {
    let (server, clock) = common::server();
    let token = server_token(&server).await;
    let mut c = Checker {
        spec: Spec::load(),
        base: server.url(),
        token: token.clone(),
        http: reqwest::Client::new(),
        failures: Vec::new(),
        covered: BTreeSet::new(),
        validated: 0,
    };

    // Users, with a business address; a wrong one and a text/plain body are refused.
    let (_, user) = c
        .post("/users", json!({ "email": "gavin@hooli.com", "mobile": "+61410888999", "firstName": "Gavin", "lastName": "Belson",
            "businessName": "Hooli", "businessIdNo": "16009661901", "businessIdNoType": "ABN",
            "businessAddress": { "addressLine1": "1 Hacker Way", "suburb": "Sydney", "state": "NSW", "postcode": "2000", "countryCode": "AUS" } }))
        .await;
    let u = id(&user);
    let (status, _) = c
        .post(
            "/users",
            json!({ "email": "a@b.co", "businessName": "X", "businessAddress": "not an object" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "businessAddress must be an object of strings"
    );
    let (status, _) = c
        .post(
            "/users",
            json!({ "email": "a@b.co", "businessName": "X", "businessAddress": { "suburb": 7 } }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "businessAddress values must be strings"
    );
    let (status, _) = c
        .send(
            Method::POST,
            "/users",
            Body::Raw("text/plain", br#"{"email":"a@b.co"}"#.to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    c.get(&format!("/users/{u}")).await;
    c.post(&format!("/users/{u}"), json!({ "middleName": "G" }))
        .await;
    c.get("/users/no-such-user").await;

    // A connection, followed to its end.
    let job = connect(&server, &token, &u, "AU00000", "gavinBelson", "hooli2016").await;
    clock.advance(std::time::Duration::from_secs(60));
    let (_, job_json) = c.get(&format!("/jobs/{job}")).await;
    let cid = common::connection_of(&job_json);
    c.get(&format!("/users/{u}/jobs")).await;
    c.get(&format!("/users/{u}/connections")).await;
    c.get(&format!("/users/{u}/connections/{cid}")).await;
    let (_, accounts) = c.get(&format!("/users/{u}/accounts")).await;
    let account = id(&accounts["data"][0]);
    c.get(&format!("/users/{u}/accounts/{account}")).await;
    let (_, txs) = c.get(&format!("/users/{u}/transactions?limit=5")).await;
    let tx = id(&txs["data"][0]);
    c.get(&format!("/users/{u}/transactions/{tx}")).await;
    c.get(&format!("/users/{u}/transactions?limit=501")).await;
    let (_, refreshed) = c
        .post(&format!("/users/{u}/connections/{cid}/refresh"), json!({}))
        .await;
    let _ = refreshed;
    c.post(&format!("/users/{u}/connections/refresh"), json!({}))
        .await;
    clock.advance(std::time::Duration::from_secs(60));
    c.get("/connectors").await;
    c.get("/connectors/AU00000/web").await;
    c.get("/connectors/NOPE/web").await;

    // Consents, auth links.
    let (_, consents) = c.get(&format!("/users/{u}/consents")).await;
    let consent = id(&consents["data"][0]);
    c.post(
        &format!("/users/{u}/auth_link"),
        json!({ "mobile": "+61410888999" }),
    )
    .await;
    c.get(&format!("/users/{u}/auth_link")).await;
    c.delete(&format!("/users/{u}/auth_link")).await;
    c.get(&format!("/users/{u}/auth_link")).await;

    // Events.
    let (_, events) = c.get("/events").await;
    let event = id(&events["data"][0]);
    c.get(&format!("/events/{event}")).await;
    c.get("/events?filter=event.type.eq('connection.created')")
        .await;
    c.get("/events/types").await;
    c.get("/events/types/connection.created").await;
    c.get("/events/nope").await;

    // Statements: a real multipart upload, and refusals.
    let mut form = Multipart::new();
    form.text("institutionId", "AU00001");
    form.file(
        "statement",
        "march.csv",
        "text/csv",
        b"date,amount\n2026-03-01,-4.50\n",
    );
    let (content_type, bytes) = form.finish();
    let content_type: &'static str = Box::leak(content_type.into_boxed_str());
    let (_, statement) = c
        .send(
            Method::POST,
            &format!("/users/{u}/statements"),
            Body::Raw(content_type, bytes),
        )
        .await;
    let statement_job = id(&statement);
    c.get(&format!("/jobs/{statement_job}")).await;
    clock.advance(std::time::Duration::from_secs(60));
    c.get(&format!("/jobs/{statement_job}")).await;
    let mut empty = Multipart::new();
    empty.text("institutionId", "AU00001");
    empty.file("statement", "march.csv", "text/csv", b"");
    let (ct, bytes) = empty.finish();
    let ct: &'static str = Box::leak(ct.into_boxed_str());
    let (status, _) = c
        .send(
            Method::POST,
            &format!("/users/{u}/statements"),
            Body::Raw(ct, bytes),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = c.post(&format!("/users/{u}/statements"), json!({})).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Identities and summaries.
    let (_, identities) = c.get(&format!("/users/{u}/identities")).await;
    let identity = id(&identities["data"][0]);
    c.get(&format!("/users/{u}/identities/{identity}")).await;
    let (_, afford) = c
        .post(&format!("/users/{u}/affordability"), json!({}))
        .await;
    let snapshot = id(&afford);
    c.get(&format!("/users/{u}/affordability")).await;
    c.get(&format!("/users/{u}/affordability/{snapshot}")).await;
    c.get(&format!(
        "/users/{u}/affordability/{snapshot}/transactions?limit=3"
    ))
    .await;
    let (_, expenses) = c.post(&format!("/users/{u}/expenses"), json!({})).await;
    c.get(&format!("/users/{u}/expenses/{}", id(&expenses)))
        .await;
    let (_, income) = c
        .post(
            &format!("/users/{u}/income"),
            json!({ "fromMonth": "2024-01" }),
        )
        .await;
    c.get(&format!("/users/{u}/income/{}", id(&income))).await;
    c.post(
        &format!("/users/{u}/income"),
        json!({ "fromMonth": "January" }),
    )
    .await;

    // Reports.
    let (_, types) = c.get("/reports/types").await;
    let report_type = id(&types["data"][0]);
    c.get(&format!("/reports/types/{report_type}")).await;
    let (_, report_job) = c
        .post("/reports", json!({ "reportType": report_type, "title": "t", "filters": [{ "name": "users", "value": [u] }] }))
        .await;
    let report_job = id(&report_job);
    c.get(&format!("/jobs/{report_job}")).await;
    clock.advance(std::time::Duration::from_secs(10));
    let (_, done) = c.get(&format!("/jobs/{report_job}")).await;
    let url = done["steps"][0]["result"]["url"]
        .as_str()
        .expect("report link")
        .to_owned();
    let report = url.rsplit('/').next().unwrap_or_default().to_owned();
    c.get("/reports").await;
    c.get(&format!("/reports/{report}")).await;
    c.get(&format!("/reports/{report}/transactions")).await;
    c.delete(&format!("/reports/{report}")).await;
    c.post("/reports", json!({ "reportType": "NOPE", "title": "t" }))
        .await;

    // Enrich.
    c.get("/enrich?q=WOOLWORTHS%201234%20SYDNEY&institution=AU00000&country=AU")
        .await;
    c.get("/enrich?q=&institution=AU00000&country=AU").await;

    // Webhooks.
    let (_, hook) = c
        .post(
            "/notifications/webhooks",
            json!({ "name": "n", "url": "https://example.com/h", "subscribedEvents": [] }),
        )
        .await;
    let hook = id(&hook);
    c.post(
        "/notifications/webhooks",
        json!({ "url": "https://example.com/h" }),
    )
    .await;
    c.get("/notifications/webhooks").await;
    c.get(&format!("/notifications/webhooks/{hook}")).await;
    c.post(
        &format!("/notifications/webhooks/{hook}"),
        json!({ "url": "https://example.com/h2" }),
    )
    .await;
    c.post(
        "/notifications/messages/test",
        json!({ "eventTypeId": "user.created" }),
    )
    .await;
    let (_, messages) = c
        .get(&format!("/notifications/webhooks/{hook}/messages?limit=2"))
        .await;
    let message = id(&messages["data"][0]);
    c.get(&format!(
        "/notifications/webhooks/{hook}/messages/{message}"
    ))
    .await;

    // Deletions last.
    c.delete(&format!("/users/{u}/consents/{consent}")).await;
    c.delete(&format!("/notifications/webhooks/{hook}")).await;
    c.post(&format!("/users/{u}/connections/{cid}/purge"), json!({}))
        .await;
    c.delete(&format!("/users/{u}/connections/{cid}")).await;
    c.delete(&format!("/users/{u}")).await;

    let missing: Vec<String> = c
        .spec
        .operations()
        .into_iter()
        .filter(|op| op.1 != "/token" && op.1 != "/jobs/{jobId}/mfa")
        .filter(|op| !c.covered.contains(op))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let mut by_route: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &c.failures {
        *by_route
            .entry(f.split(':').next().unwrap_or(""))
            .or_default() += 1;
    }
    assert!(
        c.failures.is_empty(),
        "{} failures ({by_route:?}):\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
    assert!(
        missing.is_empty(),
        "operations never answered with a 2xx: {missing:?}"
    );
    assert!(c.validated >= 60, "validated {} bodies", c.validated);
}

/// The keys Basiq's schemas require that our lenient spec leaves optional: present (`null` when
/// unknown) in the emulator's answers, and error items always carry `source`.
#[tokio::test]
async fn required_keys_are_present() {
    let (server, clock, token, user) = common::setup().await;
    let (_, u) = common::get(&server, &format!("/users/{user}"), &token).await;
    assert!(
        u["links"].as_object().unwrap().contains_key("auth_link"),
        "{u}"
    );
    connect(
        &server,
        &token,
        &user,
        "AU00000",
        "gavinBelson",
        "hooli2016",
    )
    .await;
    clock.advance(std::time::Duration::from_secs(60));
    let (_, accounts) = common::get(&server, &format!("/users/{user}/accounts"), &token).await;
    assert!(accounts["data"][0]
        .as_object()
        .unwrap()
        .contains_key("accountHolder"));
    let (_, txs) = common::get(
        &server,
        &format!("/users/{user}/transactions?limit=1"),
        &token,
    )
    .await;
    assert!(
        txs["data"][0]["links"]["connection"].is_string(),
        "{}",
        txs["data"][0]
    );
    assert!(txs["data"][0]["enrich"].is_object());
    let (_, conns) = common::get(&server, &format!("/users/{user}/connections"), &token).await;
    assert!(conns["data"][0]["links"]["institution"].is_string());
    let (_, connector) = common::get(&server, "/connectors/AU00000/web", &token).await;
    let durations = connector["stats"]["averageDurationMs"].as_object().unwrap();
    assert!(durations.values().all(Value::is_u64), "{durations:?}");
    let (_, missing) = common::get(&server, "/users/nope", &token).await;
    assert!(
        missing["data"][0]
            .as_object()
            .unwrap()
            .contains_key("source"),
        "{missing}"
    );
}

/// The check can fail: bodies that break the spec are reported.
#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    let spec = Spec::load();
    let schema = |name: &str| {
        let mut root = spec.components.clone();
        root["$ref"] = json!(format!("#/components/schemas/{name}"));
        jsonschema::validator_for(&root).unwrap()
    };
    let tx = schema("Transaction");
    assert!(tx.is_valid(
        &json!({ "id": "t1", "amount": "-1.50", "postDate": null, "subClass": { "code": 722 } })
    ));
    assert!(
        !tx.is_valid(&json!({ "id": "t1", "amount": -1.5 })),
        "money is a string"
    );
    assert!(
        !tx.is_valid(&json!({ "amount": "1" })),
        "the id is required"
    );
    assert!(
        !tx.is_valid(&json!({ "id": "t1", "enrich": null })),
        "enrich is an object"
    );
    let user = schema("User");
    assert!(!user.is_valid(&json!({ "id": "u", "businessAddress": { "suburb": 7 } })));
}
