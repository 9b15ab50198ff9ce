//! Bulk data as Arrow C Data Interface arrays (<https://arrow.apache.org/docs/format/CDataInterface.html>).
//!
//! Every export writes one record batch as a struct array (`format "+s"`, one child per column)
//! into two structs the caller provides: `struct ArrowArray` and `struct ArrowSchema`, declared
//! in the header exactly as the Arrow specification declares them.
//!
//! Release contract (the specification's): on `UOPS_OK` the caller owns both structs and must
//! call `array->release(array)` and `schema->release(schema)` exactly once each when done (only
//! on the top-level structs, never on children); the buffers stay valid until then, on any
//! thread, even after the engine is freed. Consumers that move the structs elsewhere (pyarrow,
//! arrow-cpp's `ImportRecordBatch`, nanoarrow) take over that duty. On error both structs are
//! written as released (`release == NULL`) and must not be released.

use std::ffi::c_char;
use std::ptr;

use arrow_array::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{
    Array, ArrayRef, LargeStringArray, RecordBatch, StringArray, StringViewArray, StructArray,
};
use arrow_schema::DataType;
use userops_core::{Identifier, UserRef};

use super::{guard, read_str, userops_engine, userops_status, with_handle, Fail};

/// Null-check both out structs and mark them released, so that an error leaves nothing for
/// the caller to release.
pub(crate) fn check_arrow_out(
    array: *mut FFI_ArrowArray,
    schema: *mut FFI_ArrowSchema,
) -> Result<(), Fail> {
    if array.is_null() || schema.is_null() {
        return Err((
            userops_status::UOPS_NULL_POINTER,
            "out_array or out_schema is NULL".into(),
        ));
    }
    // SAFETY: both non-null and writable per the callers' contract; `write` does not read
    // (or drop) what the caller's uninitialized structs hold.
    unsafe {
        ptr::write(array, FFI_ArrowArray::empty());
        ptr::write(schema, FFI_ArrowSchema::empty());
    }
    Ok(())
}

/// Export one batch of an output table (built by `userops_arrow`, which owns every table's
/// schema) as one struct array into structs checked by [`check_arrow_out`].
pub(crate) fn export_batch(
    batch: Result<RecordBatch, arrow_schema::ArrowError>,
    array: *mut FFI_ArrowArray,
    schema: *mut FFI_ArrowSchema,
) -> Result<(), Fail> {
    let internal = |e: arrow_schema::ArrowError| (userops_status::UOPS_INTERNAL, e.to_string());
    let batch = batch.map_err(internal)?;
    let (a, s) = to_ffi(&StructArray::from(batch).to_data()).map_err(internal)?;
    // SAFETY: checked non-null by check_arrow_out, which left released structs there (nothing
    // to drop); ownership of the exported structs passes to the caller.
    unsafe {
        ptr::write(array, a);
        ptr::write(schema, s);
    }
    Ok(())
}

/// Resolve many identifiers of one kind at once, given as an Arrow string array (`utf8`,
/// `large_utf8` or `utf8_view`; a struct array whose first child is one of those is accepted
/// too, so a one-column record batch can be passed as is). Writes a struct array with one
/// column `oneid` (`uint64`, null where the identifier is unknown or the input is null) with a
/// row per input row.
///
/// Ownership: the input is moved in (the Arrow convention for an imported array): on every
/// return, success or error, the library has released `values` and `values_schema` (their
/// `release` is NULL afterwards) and the caller must not release them. The output follows the
/// module's release contract. Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_ARGUMENT` (not a
/// string array, or a malformed one), `UOPS_INVALID_IDENTIFIER` (a value that is not a valid
/// identifier of `kind`: the message names the row; nothing is written), `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `kind` is NULL or NUL-terminated; `values` and `values_schema` are NULL or valid Arrow C
/// structs; `out_array` and `out_schema` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_identity_resolve_arrow(
    engine: *mut userops_engine,
    kind: *const c_char,
    values: *mut FFI_ArrowArray,
    values_schema: *mut FFI_ArrowSchema,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> i32 {
    guard(|| {
        // Take the input first, each struct on its own, so that whatever was passed is released
        // on every path (dropping a moved struct calls its producer's release).
        // SAFETY: valid Arrow structs per the contract; from_raw moves them out and leaves
        // released structs behind.
        let array = (!values.is_null()).then(|| unsafe { FFI_ArrowArray::from_raw(values) });
        // SAFETY: as above.
        let schema =
            (!values_schema.is_null()).then(|| unsafe { FFI_ArrowSchema::from_raw(values_schema) });
        check_arrow_out(out_array, out_schema)?;
        let (Some(array), Some(schema)) = (array, schema) else {
            return Err((
                userops_status::UOPS_NULL_POINTER,
                "values or values_schema is NULL".to_string(),
            ));
        };
        // SAFETY: per this function's contract.
        let kind = unsafe { read_str(kind, "kind") }?;
        let bad = |m: String| (userops_status::UOPS_INVALID_ARGUMENT, m);
        if array.is_released() {
            return Err(bad("values is an already released Arrow array".into()));
        }
        // SAFETY: the structs were moved from valid Arrow C structs.
        let data = unsafe { from_ffi(array, &schema) }
            .map_err(|e| bad(format!("values is not a valid Arrow array: {e}")))?;
        data.validate_full()
            .map_err(|e| bad(format!("values is not a valid Arrow array: {e}")))?;
        let mut column: ArrayRef = arrow_array::make_array(data);
        if let DataType::Struct(_) = column.data_type() {
            let s = column
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| bad("values: a struct array that is not one".into()))?;
            if s.num_columns() == 0 {
                return Err(bad("values is a struct array without columns".into()));
            }
            column = s.column(0).clone();
        }
        let strings: Vec<Option<&str>> = match column.data_type() {
            DataType::Utf8 => column
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.iter().collect()),
            DataType::LargeUtf8 => column
                .as_any()
                .downcast_ref::<LargeStringArray>()
                .map(|a| a.iter().collect()),
            DataType::Utf8View => column
                .as_any()
                .downcast_ref::<StringViewArray>()
                .map(|a| a.iter().collect()),
            _ => None,
        }
        .ok_or_else(|| {
            bad(format!(
                "values must be a utf8, large_utf8 or utf8_view array, not {}",
                column.data_type()
            ))
        })?;
        let mut ids = Vec::with_capacity(strings.len());
        for (row, s) in strings.iter().enumerate() {
            ids.push(match s {
                None => None,
                Some(v) => Some(Identifier::parse(kind, v).map_err(|e| {
                    (
                        userops_status::UOPS_INVALID_IDENTIFIER,
                        format!("values[{row}]: {e}"),
                    )
                })?),
            });
        }
        // One read view for the whole batch; resolving creates nothing, so it needs no journal.
        // SAFETY: with_handle only dereferences live handles.
        let oneids = unsafe {
            with_handle(engine, |h| {
                let e = h.engine();
                ids.into_iter()
                    .map(|id| match id {
                        None => Ok(None),
                        Some(id) => e.lookup(&UserRef::Id(id)).map(|o| o.map(|o| o.0)),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
        }?;
        export_batch(
            userops_arrow::resolved_oneids(oneids),
            out_array,
            out_schema,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
    use arrow_schema::{Field, Schema};
    use userops_arrow::OutputTable;

    use super::*;
    use crate::typed::{
        userops_audience_to_arrow, userops_automation_plan, userops_lifecycle_stages,
        userops_loyalty_statement, userops_user,
    };
    use crate::{userops_audience_eval, userops_audience_free, userops_engine_call};
    use crate::{userops_engine_free, userops_engine_new, userops_string_free};

    fn c(s: &str) -> CString {
        CString::new(s).expect("no NUL")
    }

    /// The same state as `userops_arrow`'s tests: every table has a row.
    fn engine() -> *mut userops_engine {
        let calls: Vec<(String, serde_json::Value)> =
            serde_json::from_str(include_str!("../../../tests/fixtures/output_tables.json"))
                .expect("the fixture");
        let e = userops_engine_new();
        for (method, args) in calls {
            let mut out = ptr::null_mut();
            let (m, a) = (c(&method), c(&args.to_string()));
            // SAFETY: a live engine, NUL-terminated strings, a writable out.
            let status = unsafe { userops_engine_call(e, m.as_ptr(), a.as_ptr(), &mut out) };
            assert_eq!(status, 0, "{method}");
            // SAFETY: written by the call.
            unsafe { userops_string_free(out) };
        }
        e
    }

    /// What the C ABI exports for `table` on `e`: the schema of the struct array, and its rows.
    fn exported(e: *mut userops_engine, table: OutputTable) -> (Schema, usize) {
        let mut array = FFI_ArrowArray::empty();
        let mut schema = FFI_ArrowSchema::empty();
        let (a, s) = (&raw mut array, &raw mut schema);
        let m1 = (c("member_no"), c("M1"));
        let user = userops_user {
            kind: m1.0.as_ptr(),
            value: m1.1.as_ptr(),
            oneid: 0,
        };
        let (program, now) = (c("p"), c("2026-03-01T10:00:00Z"));
        // Every table the C ABI exports, each through its function: a table added to
        // `userops_arrow` without an export here does not compile.
        // SAFETY (all calls): a live engine, valid strings and structs, writable outs.
        let status = match table {
            OutputTable::Statement => unsafe {
                userops_loyalty_statement(e, &user, program.as_ptr(), a, s)
            },
            OutputTable::AutomationPlan => unsafe {
                userops_automation_plan(e, now.as_ptr(), a, s)
            },
            OutputTable::LifecycleStages => unsafe {
                userops_lifecycle_stages(e, ptr::null(), 0, a, s)
            },
            OutputTable::AudienceMembers => {
                let mut audience = ptr::null_mut();
                let expr = c("points(\"p\") >= 1");
                let status = unsafe { userops_audience_eval(e, expr.as_ptr(), &mut audience) };
                assert_eq!(status, 0);
                // SAFETY: the live audience just made; freed once, after the export (which is a
                // copy).
                let status = unsafe { userops_audience_to_arrow(audience, a, s) };
                // SAFETY: as above.
                unsafe { userops_audience_free(audience) };
                status
            }
            OutputTable::ResolvedOneIds => {
                // M9 is unknown: a null row.
                let mut values =
                    FFI_ArrowArray::new(&StringArray::from(vec!["M1", "M9"]).to_data());
                let mut values_schema =
                    FFI_ArrowSchema::try_from(DataType::Utf8).expect("a utf8 schema");
                let kind = c("member_no");
                // SAFETY: valid Arrow structs, moved in (the call releases them).
                unsafe {
                    userops_identity_resolve_arrow(
                        e,
                        kind.as_ptr(),
                        &mut values,
                        &mut values_schema,
                        a,
                        s,
                    )
                }
            }
        };
        assert_eq!(status, 0, "{}", table.name());
        let fields = match Schema::try_from(&schema) {
            Ok(struct_schema) => struct_schema.fields().clone(),
            Err(err) => panic!("{}: {err}", table.name()),
        };
        // SAFETY: a struct array and its schema, just exported.
        let data = unsafe { from_ffi(array, &schema) }.expect("an array");
        let fields: Vec<Field> = fields.iter().map(|f| f.as_ref().clone()).collect();
        (Schema::new(fields), data.len())
    }

    /// The C ABI exports every output table with the schema `userops_arrow` declares (the
    /// Python binding's tests check its side against the same declaration).
    #[test]
    fn every_output_table_is_exported_with_its_schema() {
        let e = engine();
        for table in OutputTable::ALL {
            let (schema, rows) = exported(e, table);
            assert_eq!(&schema, table.schema().as_ref(), "{}", table.name());
            assert!(rows >= 1, "{} has rows", table.name());
        }
        // SAFETY: created above, freed once.
        unsafe { userops_engine_free(e) };
    }
}
