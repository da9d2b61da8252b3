//! JSON kept as the producer wrote it: checked without building a tree, and compacted
//! without reordering keys or respelling numbers.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// Any JSON value, parsed as fully as into a `serde_json::Value` (string escapes, number
/// range, nesting depth) but kept nowhere: a check that allocates nothing for unescaped
/// strings.
pub(super) struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Checked, A::Error> {
        while entries.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

/// `raw` JSON with the whitespace between tokens removed, and nothing else changed: key
/// order and number spelling stay exactly as the producer wrote them (re-serialising
/// through `serde_json::Value` would sort keys and round large numbers).
pub fn compact_json(raw: &str) -> Cow<'_, str> {
    // JSON's structure is ASCII, and the bytes of a multi-byte UTF-8 character are never
    // ASCII, so no cut splits one. Strings are skipped to their closing quote with
    // `memchr`; a body that is compact already (what producers' serialisers send) is
    // returned as it is, with no copy.
    let bytes = raw.as_bytes();
    let mut out: Option<String> = None;
    let (mut i, mut run_start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                // To the closing quote, stepping over escapes (`\"` included).
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
                        Some(found) if bytes[i + found] == b'\\' => i += found + 2,
                        Some(found) => {
                            i += found;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.get_or_insert_with(|| String::with_capacity(raw.len()))
                    .push_str(&raw[run_start..i]);
                run_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(raw),
        Some(mut out) => {
            out.push_str(&raw[run_start.min(raw.len())..]);
            Cow::Owned(out)
        }
    }
}

/// `data` compacted, as an owned value: copied when compact already (no second parse),
/// else compacted and parsed again.
pub(super) fn compact_raw(data: &RawValue) -> Option<Box<RawValue>> {
    match compact_json(data.get()) {
        Cow::Borrowed(_) => Some(data.to_owned()),
        Cow::Owned(compacted) => RawValue::from_string(compacted).ok(),
    }
}

/// The producer's own text of `data` in a request body, compacted; `None` when it cannot
/// be read raw (a duplicated key, say).
pub(super) fn raw_data(body: &[u8]) -> Option<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct RawBody<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let raw = serde_json::from_slice::<RawBody<'_>>(body).ok()?;
    compact_raw(raw.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_removes_whitespace_between_tokens_only() {
        let raw = "{ \"a b\" :\t[ 1 ,\n 2.50 ],\r\n \"q\\\" x\": \"Fr\u{e9}e town \u{1f600}\" , \"z\":{ } }";
        assert_eq!(
            compact_json(raw),
            "{\"a b\":[1,2.50],\"q\\\" x\":\"Fr\u{e9}e town \u{1f600}\",\"z\":{}}"
        );
        // Compact text is handed back as it is, not copied.
        assert!(matches!(
            compact_json("{\"k\":\"v w\"}"),
            Cow::Borrowed("{\"k\":\"v w\"}")
        ));
        // Cut short (never after validation): no panic, nothing invented.
        assert_eq!(compact_json("{\"a\": \"b\\"), "{\"a\":\"b\\");
        // An escaped backslash ends just before the closing quote.
        assert_eq!(compact_json("{\"a\\\\\" : \"b\" }"), "{\"a\\\\\":\"b\"}");
    }
}
