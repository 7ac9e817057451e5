//! The signer against the fixed vectors of Huawei Cloud's Go SDK.

use chrono::{TimeZone, Utc};
use tasktrack_huaweicloud::{canonical_query, canonical_uri, SignedHeaders, Signer};

fn signer() -> Signer {
    Signer::new("AccessKey", "SecretKey")
        .with_signed_headers(SignedHeaders::Only(vec!["x-sdk-date".into()]))
}

fn when() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2006, 1, 2, 15, 4, 5).unwrap()
}

#[test]
fn vector_1_get_with_query() {
    let mut parts = http::Request::get("https://example.huaweicloud.com/path?limit=1")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    signer().sign(&mut parts, b"", when()).unwrap();
    assert_eq!(parts.headers["x-sdk-date"], "20060102T150405Z");
    assert_eq!(
        parts.headers["authorization"],
        "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
    );
    assert_eq!(parts.headers["host"], "example.huaweicloud.com");
}

#[test]
fn vector_2_post_with_body() {
    let body = b"{\"Name\":\"test\",\"Id\":1}\n";
    assert_eq!(body.len(), 23);
    let mut parts = http::Request::post("https://example.huaweicloud.com/path?key=value")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    signer().sign(&mut parts, body, when()).unwrap();
    assert_eq!(
        parts.headers["authorization"],
        "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
    );
}

#[test]
fn canonical_query_vector() {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("limit", "1")
        .append_pair("enable", "true")
        .append_pair("test", "一 (&=?!#%.*)")
        .append_pair("path", "/tmp/123")
        .append_pair("multi", "3")
        .append_pair("multi", "1")
        .append_pair("multi", "2")
        .finish();
    assert_eq!(
        canonical_query(Some(&query)),
        "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
    );
    assert_eq!(canonical_query(None), "");
}

#[test]
fn canonical_uri_always_ends_with_a_slash() {
    assert_eq!(canonical_uri("/v3/p1/failed-tasks"), "/v3/p1/failed-tasks/");
    assert_eq!(canonical_uri("/v3/p1/"), "/v3/p1/");
    assert_eq!(canonical_uri("/a%20b/c:d"), "/a%20b/c%3Ad/");
}

#[test]
fn every_signed_part_changes_the_signature() {
    let sign = |uri: &str, body: &[u8], extra: Option<(&str, &str)>, method: &str| {
        let mut parts = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        if let Some((k, v)) = extra {
            parts.headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Signer::new("AK", "SK")
            .sign(&mut parts, body, when())
            .unwrap();
        parts.headers["authorization"].to_str().unwrap().to_owned()
    };
    let base = sign(
        "https://h/v3/p/tasks?limit=1",
        b"",
        Some(("x-project-id", "p")),
        "GET",
    );
    assert!(
        base.contains("SignedHeaders=host;x-project-id;x-sdk-date,"),
        "{base}"
    );
    for other in [
        sign(
            "https://h/v3/p/tasks?limit=2",
            b"",
            Some(("x-project-id", "p")),
            "GET",
        ),
        sign(
            "https://h/v3/q/tasks?limit=1",
            b"",
            Some(("x-project-id", "p")),
            "GET",
        ),
        sign(
            "https://h/v3/p/tasks?limit=1",
            b"x",
            Some(("x-project-id", "p")),
            "GET",
        ),
        sign(
            "https://h/v3/p/tasks?limit=1",
            b"",
            Some(("x-project-id", "q")),
            "GET",
        ),
        sign(
            "https://h2/v3/p/tasks?limit=1",
            b"",
            Some(("x-project-id", "p")),
            "GET",
        ),
        sign(
            "https://h/v3/p/tasks?limit=1",
            b"",
            Some(("x-project-id", "p")),
            "DELETE",
        ),
    ] {
        assert_ne!(other, base);
    }
    // Header names with '_' are never signed.
    let with_underscore = sign("https://h/v3/p/tasks", b"", Some(("x_custom", "1")), "GET");
    assert!(!with_underscore.contains("x_custom"), "{with_underscore}");
}
