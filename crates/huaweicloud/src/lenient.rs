//! Lenient number decoding for fields documented as strings that arrive as
//! numbers (or the reverse): accepts `1`, `"1"`, `0.125`, `"0.125"`, `null`.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

/// What a lenient field held: Huawei's APIs send some numbers as JSON
/// numbers and others as strings.
enum NumOrText {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Reads a number or a string in one pass. (An untagged enum would
/// buffer the value and format an error message for every variant that
/// does not match, on every answer: measurable at thousands of polls.)
struct NumOrTextVisitor;

impl<'de> Visitor<'de> for NumOrTextVisitor {
    type Value = Option<NumOrText>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(NumOrText::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        // Beyond i64, as a float: what trying `i64` then `f64` gave.
        Ok(Some(match i64::try_from(v) {
            Ok(i) => NumOrText::Int(i),
            Err(_) => NumOrText::Float(v as f64),
        }))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(NumOrText::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(NumOrText::Text(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(NumOrText::Text(v)))
    }
    // A structure is read to its end before it is refused, so a caller
    // that ignores the error finds the input where the value ended.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Err(de::Error::invalid_type(de::Unexpected::Map, &self))
    }
}

fn num_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NumOrText>, D::Error> {
    d.deserialize_option(NumOrTextVisitor)
}

/// An optional integer from a number or a string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match num_or_text(d)? {
        None => None,
        Some(NumOrText::Int(i)) => Some(i),
        Some(NumOrText::Float(f)) if f.is_finite() => Some(f as i64),
        Some(NumOrText::Float(_)) => None,
        Some(NumOrText::Text(t)) if t.trim().is_empty() => None,
        Some(NumOrText::Text(t)) => Some(t.trim().parse().map_err(de::Error::custom)?),
    })
}

/// An optional text from a number or a string (numbers keep their JSON form).
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match num_or_text(d)? {
        None => None,
        Some(NumOrText::Int(i)) => Some(i.to_string()),
        Some(NumOrText::Float(f)) => Some(f.to_string()),
        Some(NumOrText::Text(t)) => Some(t),
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Row {
        #[serde(default, deserialize_with = "super::opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "super::opt_text")]
        t: Option<String>,
        after: u8,
    }

    fn row(n: &str, t: &str) -> Result<Row, serde_json::Error> {
        serde_json::from_str(&format!(r#"{{"n": {n}, "t": {t}, "after": 7}}"#))
    }

    #[test]
    fn numbers_and_strings_read_alike() {
        let r = row("42", "42").unwrap();
        assert_eq!((r.n, r.t.as_deref(), r.after), (Some(42), Some("42"), 7));
        let r = row(r#"" 42 ""#, r#""abc""#).unwrap();
        assert_eq!((r.n, r.t.as_deref()), (Some(42), Some("abc")));
        let r = row("-3", "12.5").unwrap();
        assert_eq!((r.n, r.t.as_deref()), (Some(-3), Some("12.5")));
        assert_eq!(row("7.9", "null").unwrap().n, Some(7));
        assert_eq!(
            row("null", "null").unwrap(),
            Row {
                n: None,
                t: None,
                after: 7
            }
        );
        assert_eq!(row(r#""  ""#, r#""""#).unwrap().n, None);
        // Past i64: saturated, as the float it is read as.
        assert_eq!(row("18446744073709551615", "1").unwrap().n, Some(i64::MAX));
        let missing: Row = serde_json::from_str(r#"{"after": 1}"#).unwrap();
        assert_eq!((missing.n, missing.t), (None, None));
    }

    #[test]
    fn what_is_neither_is_an_error_not_a_panic() {
        for bad in [r#""12.5""#, r#""x""#, "true", "[1]", r#"{"a": 1}"#] {
            assert!(row(bad, "1").is_err(), "{bad}");
        }
        for bad in ["true", "[1, [2]]", r#"{"a": {"b": 1}}"#] {
            assert!(row("1", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_structure_is_read_to_its_end() {
        // What the DCS and KPS models do with a value they cannot read:
        // keep going without it.
        #[derive(Deserialize)]
        struct Loose {
            #[serde(default, deserialize_with = "loose")]
            n: Option<i64>,
            after: u8,
        }
        fn loose<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Ok(super::opt_i64(d).unwrap_or(None))
        }
        let v: Loose = serde_json::from_str(r#"{"n": {"a": [1, {"b": 2}]}, "after": 9}"#).unwrap();
        assert_eq!((v.n, v.after), (None, 9));
        let v: Loose = serde_json::from_str(r#"{"n": [1, 2, [3]], "after": 8}"#).unwrap();
        assert_eq!((v.n, v.after), (None, 8));
    }
}
