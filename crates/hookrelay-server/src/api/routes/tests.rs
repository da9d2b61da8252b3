use super::check_query;
use crate::error::ApiError;

const PAGE: &[&str] = &["limit", "after"];

fn refused(query: &str, accepted: &'static [&'static str]) -> (String, String, String) {
    match check_query(Some(query), accepted) {
        Err(ApiError::Validation(errors)) => {
            let error = &errors.0[0];
            (error.field.clone(), error.rule.to_owned(), error.message.clone())
        }
        other => panic!("{query}: expected a validation error, got {other:?}"),
    }
}

#[test]
fn accepted_parameters_and_empty_pieces_pass() {
    for query in [
        "",
        "limit=5",
        "limit=5&after=abc",
        "after=&limit=",
        "&&limit=1&",
        "limit",
    ] {
        assert!(check_query(Some(query), PAGE).is_ok(), "{query}");
    }
    assert!(check_query(None, &[]).is_ok());
    assert!(check_query(Some(""), &[]).is_ok());
}

#[test]
fn an_unknown_parameter_is_named() {
    let (field, rule, message) = refused("limt=5", PAGE);
    assert_eq!((field.as_str(), rule.as_str()), ("limt", "unknown_parameter"));
    assert!(
        message.contains("limt") && message.contains("limit, after"),
        "{message}"
    );
    let (field, _, message) = refused("foo=1", &[]);
    assert_eq!(field, "foo");
    assert!(message.contains("takes no query parameters"), "{message}");
}

#[test]
fn names_are_decoded_and_compared_exactly() {
    assert!(check_query(Some("li%6Dit=5"), PAGE).is_ok());
    assert_eq!(refused("Limit=5", PAGE).0, "Limit");
    assert_eq!(refused("limit%20=5", PAGE).0, "limit ");
}

#[test]
fn a_repeated_parameter_or_a_nameless_value_is_refused() {
    let (field, rule, _) = refused("limit=5&limit=6", PAGE);
    assert_eq!((field.as_str(), rule.as_str()), ("limit", "repeated_parameter"));
    let (field, rule, _) = refused("=5", PAGE);
    assert_eq!((field.as_str(), rule.as_str()), ("query", "format"));
}
