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
use userops_core::{Command, Identifier, UserRef};

use super::{
    engine_error, execute, guard, handle_ref, read_str, unexpected, userops_engine, userops_status,
    with_handle, Fail,
};

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

/// Call an engine method by name with its arguments as a JSON object (as
/// `userops_engine_call`) and export its output as an Arrow struct array: for the methods
/// whose output is a table, `statement`, `run_automation`, `lifecycle_stages` (the columns of
/// `userops_loyalty_statement`, `userops_automation_plan`, `userops_lifecycle_stages`),
/// `rfm`, `churn_risk`, `churn_model`, `preference_shares`, `cross_table`, `activity_scores`,
/// `high_value_users`, `micro_conversions`, `data_warnings`, `community_stats`,
/// `coupon_counts` and `channel_effectiveness` (the columns of the Python package's tables
/// of the same methods, every one nullable). What a table leaves out (the fit of
/// `churn_risk`, the model of `churn_model`) is in the method's JSON output. Release
/// contract: see the Arrow section. Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_UTF8`,
/// `UOPS_INVALID_HANDLE`, `UOPS_UNKNOWN_METHOD`, `UOPS_INVALID_ARGUMENT` (bad arguments, or
/// a method whose output is not a table: refused before it runs, so nothing changes), and
/// the method's own errors; nothing is exported on any error.
///
/// # Safety
/// `method` and `args_json` are NULL or NUL-terminated; `out_array` and `out_schema` are NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_call_arrow(
    engine: *mut userops_engine,
    method: *const c_char,
    args_json: *const c_char,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> i32 {
    guard(|| {
        check_arrow_out(out_array, out_schema)?;
        handle_ref(engine)?;
        // SAFETY: per this function's contract.
        let method = unsafe { read_str(method, "method") }?;
        // SAFETY: per this function's contract.
        let args = unsafe { read_str(args_json, "args_json") }?;
        let command = Command::from_call(method, args).map_err(engine_error)?;
        // Known before running: a method without a table must not change state and then fail.
        let Some(table) = userops_arrow::command_table(&command) else {
            return Err((
                userops_status::UOPS_INVALID_ARGUMENT,
                format!("{method} returns no table: call it with userops_engine_call"),
            ));
        };
        // SAFETY: execute only dereferences live handles.
        let output = unsafe { execute(engine, command) }?;
        match userops_arrow::output_batch(&output) {
            Some(Ok((made, batch))) if made == table => {
                export_batch(Ok(batch), out_array, out_schema)
            }
            Some(Err(e)) => export_batch(Err(e), out_array, out_schema),
            _ => Err(unexpected(method, &output)),
        }
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

    /// The shared fixture (the Rust and Python tests run it too): the calls making a state
    /// where every table has rows, and the (table, method, arguments) returning each.
    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../tests/fixtures/output_tables.json"))
            .expect("the fixture")
    }

    /// The fixture's `(table, method, arguments)`, in its order.
    fn fixture_tables() -> Vec<(String, String, serde_json::Value)> {
        serde_json::from_value(fixture()["tables"].clone()).expect("tables")
    }

    /// An engine in the fixture's state.
    fn engine() -> *mut userops_engine {
        let calls: Vec<(String, serde_json::Value)> =
            serde_json::from_value(fixture()["calls"].clone()).expect("calls");
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

    /// `userops_engine_call_arrow` of the fixture's method for `table`.
    fn call_arrow(
        e: *mut userops_engine,
        table: OutputTable,
        a: *mut FFI_ArrowArray,
        s: *mut FFI_ArrowSchema,
    ) -> i32 {
        let (_, method, args) = fixture_tables()
            .into_iter()
            .find(|(name, _, _)| name == table.name())
            .unwrap_or_else(|| panic!("{} is in the fixture", table.name()));
        let (m, args) = (c(&method), c(&args.to_string()));
        // SAFETY: a live engine, NUL-terminated strings, writable outs.
        unsafe { userops_engine_call_arrow(e, m.as_ptr(), args.as_ptr(), a, s) }
    }

    /// The schema and rows of an exported struct array (moved out of the structs).
    fn imported(array: FFI_ArrowArray, schema: &FFI_ArrowSchema, name: &str) -> (Schema, usize) {
        let fields = match Schema::try_from(schema) {
            Ok(struct_schema) => struct_schema.fields().clone(),
            Err(err) => panic!("{name}: {err}"),
        };
        // SAFETY: a struct array and its schema, just exported.
        let data = unsafe { from_ffi(array, schema) }.expect("an array");
        let fields: Vec<Field> = fields.iter().map(|f| f.as_ref().clone()).collect();
        (Schema::new(fields), data.len())
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
            // The tables of methods without a typed function, through the generic call.
            OutputTable::Rfm
            | OutputTable::ChurnRisk
            | OutputTable::ChurnModel
            | OutputTable::Preferences
            | OutputTable::CrossTable
            | OutputTable::Activity
            | OutputTable::HighValueUsers
            | OutputTable::MicroConversions
            | OutputTable::DataWarnings
            | OutputTable::CommunityStats
            | OutputTable::CouponCounts
            | OutputTable::ChannelEffectiveness => call_arrow(e, table, a, s),
        };
        assert_eq!(status, 0, "{}", table.name());
        imported(array, &schema, table.name())
    }

    /// The C ABI exports every output table with the schema `userops_arrow` declares (the
    /// Python binding's tests check its side against the same declaration).
    #[test]
    fn every_output_table_is_exported_with_its_schema() {
        let e = engine();
        // In declaration order: the automation plan runs before the channel effectiveness
        // counts its touches.
        for table in OutputTable::ALL {
            let (schema, rows) = exported(e, table);
            assert_eq!(&schema, table.schema().as_ref(), "{}", table.name());
            assert!(rows >= 1, "{} has rows", table.name());
        }
        // SAFETY: created above, freed once.
        unsafe { userops_engine_free(e) };
    }

    /// Every table a method returns comes out of the generic call, in the fixture's order
    /// (the typed exports' tables included), with its declared schema.
    #[test]
    fn the_generic_call_exports_every_method_table() {
        let e = engine();
        for (name, method, args) in fixture_tables() {
            let table = OutputTable::from_name(&name).expect("a table");
            let mut array = FFI_ArrowArray::empty();
            let mut schema = FFI_ArrowSchema::empty();
            let (m, a) = (c(&method), c(&args.to_string()));
            // SAFETY: a live engine, NUL-terminated strings, writable outs.
            let status = unsafe {
                userops_engine_call_arrow(e, m.as_ptr(), a.as_ptr(), &mut array, &mut schema)
            };
            assert_eq!(status, 0, "{method}");
            let (exported, rows) = imported(array, &schema, &name);
            assert_eq!(&exported, table.schema().as_ref(), "{name}");
            assert!(rows >= 1, "{name} has rows");
        }
        // SAFETY: created above, freed once.
        unsafe { userops_engine_free(e) };
    }

    /// A method without a table, an unknown method, bad arguments and NULLs are refused with
    /// nothing exported and nothing changed.
    #[test]
    fn the_generic_call_refuses_what_has_no_table() {
        let e = engine();
        let balance = || {
            let (m, a) = (c("balance"), c(r#"{"user": {"oneid": 1}, "program": "p"}"#));
            let mut out = ptr::null_mut();
            // SAFETY: a live engine, NUL-terminated strings, a writable out.
            assert_eq!(
                unsafe { userops_engine_call(e, m.as_ptr(), a.as_ptr(), &mut out) },
                0
            );
            // SAFETY: written by the call, read then freed once.
            let text = unsafe { std::ffi::CStr::from_ptr(out) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: as above.
            unsafe { userops_string_free(out) };
            text
        };
        let before = balance();
        let earn = r#"{"user": {"oneid": 1}, "program": "p", "points": 5, "key": "k-arrow",
            "time": "2026-03-01T10:00:00Z"}"#;
        let cases: [(&str, Option<&str>, userops_status); 5] = [
            ("earn", Some(earn), userops_status::UOPS_INVALID_ARGUMENT),
            ("stats", Some("{}"), userops_status::UOPS_INVALID_ARGUMENT),
            (
                "no_such_method",
                Some("{}"),
                userops_status::UOPS_UNKNOWN_METHOD,
            ),
            (
                "rfm",
                Some("{not json"),
                userops_status::UOPS_INVALID_ARGUMENT,
            ),
            ("rfm", None, userops_status::UOPS_NULL_POINTER),
        ];
        for (method, args, expected) in cases {
            let mut array = FFI_ArrowArray::empty();
            let mut schema = FFI_ArrowSchema::empty();
            let m = c(method);
            let a = args.map(c);
            let a_ptr = a.as_ref().map_or(ptr::null(), |a| a.as_ptr());
            // SAFETY: a live engine, NUL-terminated strings or NULL, writable outs.
            let status =
                unsafe { userops_engine_call_arrow(e, m.as_ptr(), a_ptr, &mut array, &mut schema) };
            assert_eq!(status, expected as i32, "{method}");
            assert!(array.is_released(), "{method}: nothing exported");
        }
        assert_eq!(balance(), before, "the refused earn changed nothing");
        let m = c("rfm");
        let a = c(r#"{"as_of": "2026-03-01T00:00:00Z"}"#);
        let mut schema = FFI_ArrowSchema::empty();
        // SAFETY: a live engine and strings; a NULL out_array is what is checked.
        let status = unsafe {
            userops_engine_call_arrow(e, m.as_ptr(), a.as_ptr(), ptr::null_mut(), &mut schema)
        };
        assert_eq!(status, userops_status::UOPS_NULL_POINTER as i32);
        // SAFETY: created above, freed once.
        unsafe { userops_engine_free(e) };
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: a freed engine is refused without being read.
        let status = unsafe {
            userops_engine_call_arrow(e, m.as_ptr(), a.as_ptr(), &mut array, &mut schema)
        };
        assert_eq!(status, userops_status::UOPS_INVALID_HANDLE as i32);
    }
}
