//! How `freshet consume` prints a record: the requested fields, tab-separated, in the order
//! Kafka's console consumer uses (partition, offset, timestamp, headers, key, value).

use std::io::Write;

use freshet_client::ConsumerRecord;

/// Which fields to print besides the value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields {
    pub key: bool,
    pub partition: bool,
    pub offset: bool,
    pub timestamp: bool,
    pub headers: bool,
}

/// Writes one record as a line. Keys and values are written as their raw bytes; absent
/// ones print as `null`, as Kafka's console consumer does.
pub fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    fields: Fields,
) -> std::io::Result<()> {
    if fields.partition {
        write!(out, "Partition:{}\t", record.partition)?;
    }
    if fields.offset {
        write!(out, "Offset:{}\t", record.offset)?;
    }
    if fields.timestamp {
        write!(out, "Timestamp:{}\t", record.timestamp)?;
    }
    if fields.headers {
        out.write_all(b"Headers:")?;
        if record.headers.is_empty() {
            out.write_all(b"NO_HEADERS")?;
        }
        for (index, (key, value)) in record.headers.iter().enumerate() {
            if index > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{key}:")?;
            write_bytes(out, value.as_deref())?;
        }
        out.write_all(b"\t")?;
    }
    if fields.key {
        write_bytes(out, record.key.as_deref())?;
        out.write_all(b"\t")?;
    }
    write_bytes(out, record.value.as_deref())?;
    out.write_all(b"\n")
}

fn write_bytes(out: &mut impl Write, bytes: Option<&[u8]>) -> std::io::Result<()> {
    out.write_all(bytes.unwrap_or(b"null"))
}

/// Prints one line to stdout. A closed pipe (`freshet topic list | head -1`) ends the process
/// quietly with success, as Unix tools do, instead of `println!`'s panic and backtrace.
pub fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout(), "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("freshet: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`line`].
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::line(format_args!($($arg)*)) };
}
pub(crate) use say;

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_client::Bytes;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 17,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("a".into(), None),
            ],
        }
    }

    fn text(record: &ConsumerRecord, fields: Fields) -> String {
        let mut out = Vec::new();
        write_record(&mut out, record, fields).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn value_only_by_default() {
        assert_eq!(text(&record(), Fields::default()), "hello\n");
    }

    #[test]
    fn every_field_in_kafka_order() {
        let all = Fields {
            key: true,
            partition: true,
            offset: true,
            timestamp: true,
            headers: true,
        };
        assert_eq!(
            text(&record(), all),
            "Partition:2\tOffset:17\tTimestamp:1700000000000\tHeaders:a:1,a:null\tk\thello\n"
        );
    }

    #[test]
    fn nulls_and_missing_headers() {
        let mut r = record();
        r.key = None;
        r.value = None;
        r.headers.clear();
        let fields = Fields {
            key: true,
            headers: true,
            ..Fields::default()
        };
        assert_eq!(text(&r, fields), "Headers:NO_HEADERS\tnull\tnull\n");
    }
}
