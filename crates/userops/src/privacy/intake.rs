//! Salted hashing of identifiers at intake.
//!
//! Works on the command's JSON form so that it covers every command of every module, including
//! ones written after this: any object that is exactly `{"kind": <identifier kind>, "value":
//! <string>}` is an identifier (the wire shape of [`Identifier`] and of an identifier
//! [`UserRef`](crate::UserRef)), and its value is replaced by its salted hash. A value that does
//! not normalize is left alone: executing the command then reports it as usual.

use crate::command::Command;
use crate::error::Error;
use crate::ids::Identifier;

/// Replace every identifier in `command` by its salted hash (see
/// [`Identifier::hashed`]). Already hashed identifiers are unchanged, so this is idempotent.
///
/// # Errors
///
/// `internal` only: the command did not survive its round trip through JSON (a bug).
pub fn hash_identifiers_in(command: Command, salt: &str) -> Result<Command, Error> {
    let mut value = serde_json::to_value(&command).map_err(|e| Error::Internal(e.to_string()))?;
    if !walk(&mut value, salt) {
        return Ok(command);
    }
    serde_json::from_value(value).map_err(|e| Error::Internal(format!("hashed command: {e}")))
}

/// Returns whether anything changed.
fn walk(v: &mut serde_json::Value, salt: &str) -> bool {
    match v {
        serde_json::Value::Object(map) => {
            if map.len() == 2 {
                if let (Some(serde_json::Value::String(k)), Some(serde_json::Value::String(val))) =
                    (map.get("kind"), map.get("value"))
                {
                    if let Ok(id) = Identifier::parse(k, val) {
                        if id.is_hashed() {
                            return false;
                        }
                        let hashed = id.hashed(salt).value().to_owned();
                        map.insert("value".into(), serde_json::Value::String(hashed));
                        return true;
                    }
                    return false;
                }
            }
            let mut changed = false;
            for (_, child) in map.iter_mut() {
                changed |= walk(child, salt);
            }
            changed
        }
        serde_json::Value::Array(items) => {
            let mut changed = false;
            for child in items {
                changed |= walk(child, salt);
            }
            changed
        }
        _ => false,
    }
}
