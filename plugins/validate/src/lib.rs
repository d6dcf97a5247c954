//! `POST /api/users`: validates a JSON user, answers every problem at once, and on success
//! "creates" it with a random id. A realistic tour of the SDK:
//!
//! - headers: `Content-Type` must be JSON (415 `unsupported_media_type` otherwise);
//!   `Prefer: return=minimal` (RFC 7240) gets an empty 201;
//! - query: `?dry_run=1` (or `true`) validates without creating: 200 and no id;
//! - body: `req.json()?` answers 400 for broken JSON by itself, with the host's error shape
//!   `{"error": "invalid_json", "message": "..."}`;
//! - field errors: 422 `{"errors": [{"field": "email", "message": "..."}, ...]}`;
//! - success: 201, `Location: /api/users/<id>`, the normalized user (trimmed name, lowercased
//!   email, sorted unique lowercased tags) and an id from WASI randomness.
//!
//! Input: `{"name": string, "email": string, "age"?: integer 0..=150, "tags"?: [string]}`; any
//! other field is an error, so typos do not pass silently.

use serde::Serialize;
use serde_json::{Map, Value, json};
use wasmgate_sdk::{Request, Response, random};

/// A user that passed validation, in normalized form.
#[derive(Debug, Serialize, PartialEq)]
struct User {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    name: String,
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    age: Option<u8>,
    tags: Vec<String>,
}

/// One problem with one field; `field` is empty for the document as a whole.
#[derive(Debug, Serialize, PartialEq)]
struct FieldError {
    field: String,
    message: String,
}

fn create_user(req: Request) -> Result<Response, Response> {
    let content_type = req.header("content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let message = format!("expected Content-Type: application/json, got {content_type:?}");
        return Err(Response::error(415, "unsupported_media_type", message));
    }
    let input: Value = req.json()?;
    let mut user =
        validate(&input).map_err(|errors| Response::json(422, &json!({ "errors": errors })))?;

    if matches!(req.query("dry_run"), Some("1" | "true")) {
        return Ok(Response::json(200, &json!({ "valid": true, "user": user })));
    }
    let id = random::uuid_v4();
    let location = format!("/api/users/{id}");
    user.id = Some(id);
    let minimal = req
        .header_all("prefer")
        .any(|p| p.split(',').any(|t| t.trim() == "return=minimal"));
    let resp = if minimal {
        Response::new(201)
    } else {
        Response::json(201, &user)
    };
    Ok(resp.header("location", location))
}

wasmgate_sdk::handler!(create_user);

/// Checks every field and collects every error, rather than stopping at the first one the way a
/// `#[derive(Deserialize)]` would: a form wants all its red marks at once.
fn validate(input: &Value) -> Result<User, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    };
    let Some(obj) = input.as_object() else {
        error("", "expected a JSON object");
        return Err(errors);
    };
    for key in obj
        .keys()
        .filter(|k| !["name", "email", "age", "tags"].contains(&k.as_str()))
    {
        error(key, "unknown field");
    }

    let name = match required_str(obj, "name") {
        Ok(s) if s.trim().is_empty() => Err("must not be blank"),
        Ok(s) if s.trim().chars().count() > 100 => Err("must be at most 100 characters"),
        other => other,
    }
    .map(|s| s.trim().to_owned())
    .map_err(|m| error("name", m));

    let email = required_str(obj, "email")
        .and_then(|s| {
            email_shape(s.trim())
                .then(|| s.trim().to_lowercase())
                .ok_or("is not an email address")
        })
        .map_err(|m| error("email", m));

    let age = match obj.get("age") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= 150 => Ok(Some(n as u8)),
            Some(_) => Err("must be at most 150"),
            None => Err("must be a whole number from 0 to 150"),
        },
    }
    .map_err(|m| error("age", m));

    let tags = match obj.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => tags(items),
        Some(_) => Err("must be an array of strings"),
    }
    .map_err(|m| error("tags", m));

    match (name, email, age, tags) {
        (Ok(name), Ok(email), Ok(age), Ok(tags)) if errors.is_empty() => Ok(User {
            id: None,
            name,
            email,
            age,
            tags,
        }),
        _ => Err(errors),
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, &'static str> {
    match obj.get(field) {
        None | Some(Value::Null) => Err("is required"),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err("must be a string"),
    }
}

/// `local@domain.tld`: one `@`, a non-empty local part without spaces, a domain of at least two
/// dot-separated labels of letters, digits and inner hyphens. Deliberately not RFC 5322: the only
/// real check of an address is sending it a mail.
fn email_shape(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains(|c: char| c.is_whitespace() || c == '@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(label_ok)
}

/// Lowercased, sorted, deduplicated; at most 10, each 1..=32 characters.
fn tags(items: &[Value]) -> Result<Vec<String>, &'static str> {
    let mut tags = Vec::with_capacity(items.len());
    for item in items {
        let tag = item
            .as_str()
            .ok_or("must be an array of strings")?
            .trim()
            .to_lowercase();
        if tag.is_empty() || tag.chars().count() > 32 {
            return Err("each tag must be 1 to 32 characters");
        }
        tags.push(tag);
    }
    tags.sort();
    tags.dedup();
    if tags.len() > 10 {
        return Err("at most 10 distinct tags");
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmgate_sdk::testing;

    fn post(body: Value) -> wasmgate_sdk::RequestBuilder {
        Request::builder()
            .method("POST")
            .path("/api/users")
            .json(&body)
    }

    fn errors(resp: &Response) -> Vec<(String, String)> {
        let v: Value = resp.body_json().unwrap();
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap().into(),
                    e["message"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    #[test]
    fn creates_a_normalized_user() {
        let body = json!({"name": "  Ada Lovelace ", "email": " Ada@Example.ORG", "age": 36,
                          "tags": ["Math", "math", "poetry"]});
        let resp = testing::call(create_user, post(body).build());
        assert_eq!(resp.status(), 201);
        let v: Value = resp.body_json().unwrap();
        let id = v["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(
            resp.header_value("location"),
            Some(format!("/api/users/{id}").as_str())
        );
        assert_eq!(v["name"], "Ada Lovelace");
        assert_eq!(v["email"], "ada@example.org");
        assert_eq!(v["age"], 36);
        assert_eq!(v["tags"], json!(["math", "poetry"]));
    }

    #[test]
    fn reports_every_field_error() {
        let body =
            json!({"name": " ", "email": "ada@localhost", "age": -1, "tags": "x", "admin": true});
        let resp = testing::call(create_user, post(body).build());
        assert_eq!(resp.status(), 422);
        let e = |f: &str, m: &str| (f.to_owned(), m.to_owned());
        assert_eq!(
            errors(&resp),
            [
                e("admin", "unknown field"),
                e("name", "must not be blank"),
                e("email", "is not an email address"),
                e("age", "must be a whole number from 0 to 150"),
                e("tags", "must be an array of strings"),
            ]
        );
    }

    #[test]
    fn missing_fields_and_wrong_types() {
        let resp = testing::call(create_user, post(json!({"email": 5})).build());
        assert_eq!(
            errors(&resp),
            [
                ("name".into(), "is required".into()),
                ("email".into(), "must be a string".into())
            ]
        );
        let resp = testing::call(create_user, post(json!([1])).build());
        assert_eq!(
            errors(&resp),
            [(String::new(), "expected a JSON object".to_owned())]
        );
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com", "x@1.2"] {
            assert!(email_shape(ok), "{ok}");
        }
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a@@b.co", "a b@c.de", "a@-b.co", "a@b..co", "a@b_c.de",
        ] {
            assert!(!email_shape(bad), "{bad}");
        }
    }

    #[test]
    fn content_type_and_json_errors() {
        let req = Request::builder().method("POST").body("{}").build();
        let resp = testing::call(create_user, req);
        assert_eq!(resp.status(), 415);
        assert_eq!(
            resp.body_json::<Value>().unwrap()["error"],
            "unsupported_media_type"
        );
        let req = Request::builder()
            .method("POST")
            .header("Content-Type", "application/json; charset=utf-8")
            .body("{\"name\": ")
            .build();
        let resp = testing::call(create_user, req);
        assert_eq!(resp.status(), 400);
        let v: Value = resp.body_json().unwrap();
        assert_eq!(v["error"], "invalid_json");
        assert!(
            v["message"].as_str().unwrap().contains("not valid JSON"),
            "{v}"
        );
    }

    #[test]
    fn dry_run_and_prefer_minimal() {
        let body = json!({"name": "Ada", "email": "ada@example.org"});
        let resp = testing::call(create_user, post(body.clone()).query("dry_run=1").build());
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.body_json::<Value>().unwrap(),
            json!({"valid": true, "user": {"name": "Ada", "email": "ada@example.org", "tags": []}})
        );

        let resp = testing::call(
            create_user,
            post(body).header("Prefer", "return=minimal").build(),
        );
        assert_eq!(resp.status(), 201);
        assert!(resp.body_bytes().is_empty());
        assert!(
            resp.header_value("location")
                .unwrap()
                .starts_with("/api/users/")
        );
    }
}
