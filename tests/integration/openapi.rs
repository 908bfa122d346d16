//! `/api/openapi.json` describes exactly the routes the app serves.
//!
//! The served routes come from the app itself: the route table that actix builds from
//! `sessiond_app::http::configure` (its resource map) gives every resource pattern, and a
//! request of each method on each pattern to a running app tells which methods it answers
//! (405 and the default "no route" 404 mean not served). Adding a route without documenting it, or
//! documenting one that does not exist, fails [`every_served_route_is_documented_and_every_documented_one_served`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use actix_web::dev::Service;
use actix_web::{App, test};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sessiond_domain::model::Role;
use sessiond_tests::app::{TestApp, WINDOWS};

/// Served on purpose without a description: the web UI's page, assets and cookie endpoints
/// (same-origin only; the document's description says so) and the document itself.
fn described(pattern: &str) -> bool {
    let ui = pattern == "/" || pattern.starts_with("/assets/") || pattern.starts_with("/ui/");
    !ui && pattern != "/api/openapi.json"
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// `/sessions/{id}` and `/sessions/{session_id}` are the same route.
fn normalize(pattern: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in pattern.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The full resource patterns of actix's route table, from its debug rendering: the map is
/// a tree of scopes whose leaves are resources, and a leaf's pattern is the concatenation of
/// the patterns on its way down. (actix has no public walk over the tree.)
fn resource_patterns(rendered: &str) -> Vec<String> {
    // Each node prints as `ResourceMap {` followed by its `pattern: ResourceDef {... patterns:
    // Single("...")` and its `nodes: Some([...])` or `nodes: None`; nesting shows in the
    // indentation of `{:#?}`.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut leaves = Vec::new();
    let mut pending_node: Option<usize> = None;
    let lines: Vec<&str> = rendered.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.ends_with("ResourceMap {") {
            while stack.last().is_some_and(|(depth, _)| *depth >= indent) {
                stack.pop();
            }
            pending_node = Some(indent);
        } else if let Some(depth) = pending_node
            && text.starts_with("patterns: Single(")
        {
            // `patterns: Single(` then `"pattern",` on the next line.
            let literal = if text.ends_with('(') {
                i += 1;
                lines.get(i).map_or("", |l| l.trim())
            } else {
                text.trim_start_matches("patterns: Single(")
            };
            let pattern: String = literal
                .trim_end_matches([',', ')'])
                .trim_matches('"')
                .to_owned();
            let prefix = stack.last().map_or("", |(_, p)| p.as_str()).to_owned();
            stack.push((depth, format!("{prefix}{pattern}")));
            pending_node = None;
        } else if text == "nodes: None,"
            && let Some((_, full)) = stack.last()
        {
            leaves.push(full.clone());
        }
        i += 1;
    }
    leaves
}

/// The full resource patterns of the app's route table.
async fn route_table() -> Vec<String> {
    let rendered = Arc::new(Mutex::new(String::new()));
    let capture = rendered.clone();
    let app = test::init_service(
        App::new()
            .configure(|config| sessiond_app::http::configure(config, 4096))
            .wrap_fn(move |request, service| {
                *capture.lock().unwrap() = format!("{:#?}", request.request().resource_map());
                service.call(request)
            }),
    )
    .await;
    let _ = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    let rendered = rendered.lock().unwrap().clone();
    let patterns = resource_patterns(&rendered);
    assert!(
        patterns.iter().any(|p| p == "/api/v1/auth/login")
            && patterns.iter().any(|p| p == "/api/v1/users/me")
            && patterns.iter().any(|p| p == "/health/live"),
        "could not read the route table; got {patterns:?} from\n{rendered}"
    );
    patterns
}

/// Every (method, normalized pattern) the running `app` answers, outside the web UI. Probes
/// carry a system administrator's token (a fresh sign-in per pattern, since some probes end
/// sessions) so that the `/admin` guard lets them reach the routing of its scope.
async fn served_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    let admin = app.create_user(Role::SystemAdmin).await;
    let mut served = BTreeSet::new();
    for pattern in route_table().await.iter().filter(|p| described(p)) {
        let device = app.login(&admin, WINDOWS).await;
        let path = normalize(pattern).replace("{}", "00000000-0000-4000-8000-000000000000");
        for method in METHODS {
            let response = app
                .request(method.clone(), &path)
                .bearer_auth(&device.access_token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let no_route = status == StatusCode::NOT_FOUND && body.contains("no route for");
            if status != StatusCode::METHOD_NOT_ALLOWED && !no_route {
                served.insert((method.as_str().to_lowercase(), normalize(pattern)));
            }
        }
    }
    served
}

/// Every (method, normalized path) the document describes.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS
                .iter()
                .any(|m| m.as_str().eq_ignore_ascii_case(method))
            {
                documented.insert((method.clone(), normalize(path)));
            }
        }
    }
    documented
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_one_served() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/api/openapi.json", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    let documented = documented_routes(&doc);
    let served = served_routes(&app).await;
    app.stop().await;
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but missing from /api/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    // The SPEC §4 routes, so that a route table the parser misreads cannot pass as empty.
    for (method, path) in [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/sessions"),
        ("delete", "/api/v1/sessions"),
        ("get", "/api/v1/sessions/current"),
        ("get", "/api/v1/sessions/history"),
        ("delete", "/api/v1/sessions/{}"),
        ("get", "/api/v1/users/me"),
        ("post", "/api/v1/users/me/password"),
        ("post", "/api/v1/admin/users"),
        ("patch", "/api/v1/admin/users/{}"),
        ("get", "/api/v1/admin/users/{}/sessions"),
        ("delete", "/api/v1/admin/users/{}/sessions"),
        ("delete", "/api/v1/admin/sessions/{}"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
    ] {
        assert!(
            served.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not served"
        );
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_bearer_auth_and_problem_details() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .client
        .get(format!("{}/api/openapi.json", app.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.stop().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in [
        "type",
        "title",
        "status",
        "detail",
        "code",
        "reason",
        "request_id",
    ] {
        assert!(
            problem["properties"].get(field).is_some(),
            "Problem lacks {field}"
        );
    }
    let public = [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/health/live",
        "/health/ready",
        "/.well-known/jwks.json",
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let secured = operation.get("security").is_some();
            assert_eq!(
                secured,
                !public.contains(&path.as_str()),
                "{method} {path}: security"
            );
            if secured {
                assert!(
                    operation["responses"].get("401").is_some(),
                    "{method} {path} documents no 401"
                );
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
