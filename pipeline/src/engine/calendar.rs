//! The calendar functions the metric files call, so the SQL stays the definition of every
//! local-day count:
//! - `local_day(at, zone)`: the local day (days since the local 1970-01-01) instant `at` falls on
//!   in time zone number `zone` (`params.zone`, see [`Zone::id`]);
//! - `local_minute(at, zone)`: `at` as local `YYYY-MM-DD HH:MM ZZZ`, for messages.
//!
//! Both return NULL for a NULL instant, and fail the query on a zone number no zone has.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};
use model::calendar::{Calendar, Zone};

fn zone(id: i64) -> Result<Zone, DataFusionError> {
    Zone::from_id(id).ok_or_else(|| DataFusionError::Execution(format!("no time zone number {id}")))
}

/// Applies `f` to every (instant, zone) row, looking each zone up once per run of equal ids.
fn per_row<T>(
    args: &[ColumnarValue],
    mut f: impl FnMut(&Calendar, i64) -> T,
) -> Result<Vec<Option<T>>, DataFusionError> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let (Some(at), Some(zones)) = (
        arrays[0].as_any().downcast_ref::<Int64Array>(),
        arrays[1].as_any().downcast_ref::<Int64Array>(),
    ) else {
        return Err(DataFusionError::Internal(
            "calendar functions take (BIGINT, BIGINT)".into(),
        ));
    };
    let mut current: Option<(i64, Calendar)> = None;
    let mut out = Vec::with_capacity(at.len());
    for i in 0..at.len() {
        if at.is_null(i) || zones.is_null(i) {
            out.push(None);
            continue;
        }
        let id = zones.value(i);
        let cal = match &current {
            Some((c, cal)) if *c == id => cal,
            _ => &current.insert((id, zone(id)?.days())).1,
        };
        out.push(Some(f(cal, at.value(i))));
    }
    Ok(out)
}

/// `array` as the function's value: a scalar when every argument was one.
fn value(args: &[ColumnarValue], array: ArrayRef) -> Result<ColumnarValue, DataFusionError> {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// `local_day(at BIGINT, zone BIGINT) -> BIGINT`.
pub fn local_day() -> ScalarUDF {
    create_udf(
        "local_day",
        vec![DataType::Int64, DataType::Int64],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args| {
            let days = per_row(args, |cal, at| cal.local_day(at))?;
            value(args, Arc::new(Int64Array::from(days)))
        }),
    )
}

/// `local_minute(at BIGINT, zone BIGINT) -> VARCHAR`.
pub fn local_minute() -> ScalarUDF {
    create_udf(
        "local_minute",
        vec![DataType::Int64, DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            let text = per_row(args, |cal, at| cal.timezone.format_minute(at))?;
            value(args, Arc::new(StringArray::from(text)))
        }),
    )
}
