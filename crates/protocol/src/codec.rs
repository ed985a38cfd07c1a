//! Primitive encodings of the Kafka protocol and the traits the generated code implements.
//!
//! Every reader takes `&mut Bytes` and checks the remaining length before it reads, so a
//! hostile frame can produce an error but never a panic. Readers never reserve memory for more
//! elements than the remaining bytes could hold (see [`read_array`]). Bytes and records fields
//! are returned as slices of the input (zero copy).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A tagged field this code does not know: its tag and its raw bytes, kept so that a message
/// decoded and encoded again loses nothing (Kafka's `RawTaggedField`).
pub type RawTaggedField = (u32, Bytes);

/// A 16-byte UUID as Kafka sends it (two big-endian 64-bit halves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID, Kafka's `Uuid.ZERO_UUID`, the default of every uuid field.
    pub const ZERO: Uuid = Uuid([0; 16]);
}

/// Why bytes could not be decoded. Every variant is the fault of the input, never of the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("input ended: needed {needed_bytes} more bytes, {remaining_bytes} left")]
    Truncated {
        needed_bytes: usize,
        remaining_bytes: usize,
    },
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("null where the version does not allow null")]
    UnexpectedNull,
    #[error("array of {count} elements cannot fit in {remaining_bytes} bytes")]
    ArrayTooLong {
        count: usize,
        remaining_bytes: usize,
    },
    #[error("varint longer than its maximum size")]
    VarintTooLong,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid nullable-struct marker {0}")]
    InvalidStructMarker(i8),
    #[error("tagged field {tag} declared {declared_bytes} bytes but its value used {used_bytes}")]
    TaggedFieldSize {
        tag: u32,
        declared_bytes: usize,
        used_bytes: usize,
    },
    #[error("unsupported version {version} of {message}")]
    UnsupportedVersion { message: &'static str, version: i16 },
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("unsupported version {version} of {message}")]
    UnsupportedVersion { message: &'static str, version: i16 },
    #[error("field {field} is null but the version does not allow null")]
    NullNotAllowed { field: &'static str },
    #[error("length {0} does not fit the wire format")]
    TooLong(usize),
}

/// A message that can be written to a buffer in a given version.
pub trait Encode {
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;
    /// The exact number of bytes [`Encode::encode`] would append.
    fn encoded_len(&self, version: i16) -> Result<usize, EncodeError>;
}

/// A message that can be read from a buffer in a given version. On success `buf` is advanced
/// past the message; bytes after it are left for the caller.
pub trait Decode: Sized {
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// A top-level message (request, response, header or data record) described by one spec file.
pub trait Message: StructCodec {
    /// The spec's `name`.
    const NAME: &'static str;
    /// The spec's `validVersions`, inclusive.
    const VALID_VERSIONS: (i16, i16);
    /// The first flexible version, `None` when no version is flexible.
    const FLEXIBLE_MIN_VERSION: Option<i16>;
}

impl<T: Message> Encode for T {
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
        check_encode_version::<T>(version)?;
        self.write_to(buf, version)
    }

    fn encoded_len(&self, version: i16) -> Result<usize, EncodeError> {
        check_encode_version::<T>(version)?;
        let mut len = LenSink::default();
        self.write_to(&mut len, version)?;
        Ok(len.0)
    }
}

impl<T: Message> Decode for T {
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {
        let (min, max) = T::VALID_VERSIONS;
        if !(min..=max).contains(&version) {
            return Err(DecodeError::UnsupportedVersion {
                message: T::NAME,
                version,
            });
        }
        T::read_from(buf, version)
    }
}

fn check_encode_version<T: Message>(version: i16) -> Result<(), EncodeError> {
    let (min, max) = T::VALID_VERSIONS;
    if (min..=max).contains(&version) {
        Ok(())
    } else {
        Err(EncodeError::UnsupportedVersion {
            message: T::NAME,
            version,
        })
    }
}

/// Implemented by every generated struct (messages and the structs nested in them). The
/// version is the message's version; nested structs do not check it.
#[doc(hidden)]
pub trait StructCodec: Sized {
    /// The fewest bytes one instance takes in any valid version: the bound used before
    /// reserving memory for an array of these.
    const MIN_SIZE: usize;
    fn read_from(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
    fn write_to<S: Sink>(&self, s: &mut S, version: i16) -> Result<(), EncodeError>;
}

/// Where encoded bytes go: a buffer, or a counter that only adds up lengths, so one generated
/// function serves both `encode` and `encoded_len`.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.put_slice(bytes);
    }
}

/// Counts bytes instead of writing them.
#[derive(Debug, Default)]
pub struct LenSink(pub usize);

impl Sink for LenSink {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

fn need(buf: &Bytes, needed_bytes: usize) -> Result<(), DecodeError> {
    if buf.remaining() < needed_bytes {
        Err(DecodeError::Truncated {
            needed_bytes,
            remaining_bytes: buf.remaining(),
        })
    } else {
        Ok(())
    }
}

/// Splits off the next `len` bytes without copying.
pub fn take(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.split_to(len))
}

/// Fixed-width big-endian values.
pub trait Fixed: Sized + Copy {
    const SIZE: usize;
    fn read_fixed(buf: &mut Bytes) -> Result<Self, DecodeError>;
    fn write_fixed<S: Sink>(self, s: &mut S);
}

macro_rules! fixed_int {
    ($($t:ty),*) => {$(
        impl Fixed for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn read_fixed(buf: &mut Bytes) -> Result<Self, DecodeError> {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                need(buf, raw.len())?;
                buf.copy_to_slice(&mut raw);
                Ok(<$t>::from_be_bytes(raw))
            }
            fn write_fixed<S: Sink>(self, s: &mut S) {
                s.put(&self.to_be_bytes());
            }
        }
    )*};
}

fixed_int!(i8, u8, i16, i32, i64, u16, u32, f64);

impl Fixed for bool {
    const SIZE: usize = 1;
    fn read_fixed(buf: &mut Bytes) -> Result<Self, DecodeError> {
        // Kafka reads any non-zero byte as true.
        Ok(i8::read_fixed(buf)? != 0)
    }
    fn write_fixed<S: Sink>(self, s: &mut S) {
        s.put(&[u8::from(self)]);
    }
}

impl Fixed for Uuid {
    const SIZE: usize = 16;
    fn read_fixed(buf: &mut Bytes) -> Result<Self, DecodeError> {
        let mut raw = [0u8; 16];
        need(buf, 16)?;
        buf.copy_to_slice(&mut raw);
        Ok(Uuid(raw))
    }
    fn write_fixed<S: Sink>(self, s: &mut S) {
        s.put(&self.0);
    }
}

pub fn read_fixed<T: Fixed>(buf: &mut Bytes) -> Result<T, DecodeError> {
    T::read_fixed(buf)
}

pub fn write_fixed<S: Sink, T: Fixed>(s: &mut S, value: T) {
    value.write_fixed(s);
}

/// Unsigned LEB128 varint of at most 5 bytes (Kafka's `readUnsignedVarint`).
pub fn read_uvarint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let byte = u8::read_fixed(buf)?;
        // The fifth byte may only carry the top 4 bits of a u32.
        if i == 4 && byte > 0x0f {
            return Err(DecodeError::VarintTooLong);
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Unsigned LEB128 varint of at most 10 bytes.
pub fn read_uvarlong(buf: &mut Bytes) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = u8::read_fixed(buf)?;
        if i == 9 && byte > 0x01 {
            return Err(DecodeError::VarintTooLong);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Zig-zag signed varint (records use these).
pub fn read_varint(buf: &mut Bytes) -> Result<i32, DecodeError> {
    let raw = read_uvarint(buf)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Zig-zag signed varlong.
pub fn read_varlong(buf: &mut Bytes) -> Result<i64, DecodeError> {
    let raw = read_uvarlong(buf)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

pub fn write_uvarint<S: Sink>(s: &mut S, mut value: u32) {
    let mut out = [0u8; 5];
    let mut len = 0;
    while value >= 0x80 {
        out[len] = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
        len += 1;
    }
    out[len] = value as u8;
    s.put(&out[..=len]);
}

pub fn write_uvarlong<S: Sink>(s: &mut S, mut value: u64) {
    let mut out = [0u8; 10];
    let mut len = 0;
    while value >= 0x80 {
        out[len] = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
        len += 1;
    }
    out[len] = value as u8;
    s.put(&out[..=len]);
}

pub fn write_varint<S: Sink>(s: &mut S, value: i32) {
    write_uvarint(s, ((value << 1) ^ (value >> 31)) as u32);
}

pub fn write_varlong<S: Sink>(s: &mut S, value: i64) {
    write_uvarlong(s, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads the length prefix of a string, bytes or array: `None` for null. Non-compact
/// lengths are `width` bytes wide (2 for strings, 4 for bytes and arrays); compact lengths are
/// an unsigned varint holding length + 1, with 0 meaning null.
fn read_len(buf: &mut Bytes, compact: bool, width: usize) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        i64::from(read_uvarint(buf)?) - 1
    } else if width == 2 {
        i64::from(i16::read_fixed(buf)?)
    } else {
        i64::from(i32::read_fixed(buf)?)
    };
    match len {
        -1 => Ok(None),
        n if n < -1 => Err(DecodeError::InvalidLength(n)),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| DecodeError::InvalidLength(n)),
    }
}

fn write_len<S: Sink>(
    s: &mut S,
    len: Option<usize>,
    compact: bool,
    width: usize,
) -> Result<(), EncodeError> {
    match (compact, len) {
        (true, None) => write_uvarint(s, 0),
        (true, Some(n)) => {
            let plus_one = u32::try_from(n)
                .ok()
                .and_then(|n| n.checked_add(1))
                .ok_or(EncodeError::TooLong(n))?;
            write_uvarint(s, plus_one);
        }
        (false, None) if width == 2 => write_fixed(s, -1i16),
        (false, None) => write_fixed(s, -1i32),
        (false, Some(n)) if width == 2 => {
            write_fixed(s, i16::try_from(n).map_err(|_| EncodeError::TooLong(n))?)
        }
        (false, Some(n)) => write_fixed(s, i32::try_from(n).map_err(|_| EncodeError::TooLong(n))?),
    }
    Ok(())
}

fn required<T>(value: Option<T>) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::UnexpectedNull)
}

fn null_check<T>(nullable_now: bool, value: Option<T>) -> Result<Option<T>, DecodeError> {
    if value.is_none() && !nullable_now {
        Err(DecodeError::UnexpectedNull)
    } else {
        Ok(value)
    }
}

fn read_opt_string_raw(buf: &mut Bytes, compact: bool) -> Result<Option<String>, DecodeError> {
    let Some(len) = read_len(buf, compact, 2)? else {
        return Ok(None);
    };
    // Kafka refuses strings longer than i16::MAX in both encodings; so does the encoder here,
    // so everything decoded can be encoded again.
    if len > i16::MAX as usize {
        return Err(DecodeError::InvalidLength(len as i64));
    }
    let raw = take(buf, len)?;
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| DecodeError::InvalidUtf8)
}

pub fn read_string(buf: &mut Bytes, compact: bool) -> Result<String, DecodeError> {
    required(read_opt_string_raw(buf, compact)?)
}

pub fn read_opt_string(
    buf: &mut Bytes,
    compact: bool,
    nullable_now: bool,
) -> Result<Option<String>, DecodeError> {
    null_check(nullable_now, read_opt_string_raw(buf, compact)?)
}

pub fn write_string<S: Sink>(s: &mut S, value: &str, compact: bool) -> Result<(), EncodeError> {
    // Kafka caps strings at i16::MAX bytes in both encodings.
    if value.len() > i16::MAX as usize {
        return Err(EncodeError::TooLong(value.len()));
    }
    write_len(s, Some(value.len()), compact, 2)?;
    s.put(value.as_bytes());
    Ok(())
}

pub fn write_opt_string<S: Sink>(
    s: &mut S,
    value: Option<&str>,
    compact: bool,
    nullable_now: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    match value {
        Some(v) => write_string(s, v, compact),
        None if nullable_now => write_len(s, None, compact, 2),
        None => Err(EncodeError::NullNotAllowed { field }),
    }
}

fn read_opt_bytes_raw(buf: &mut Bytes, compact: bool) -> Result<Option<Bytes>, DecodeError> {
    match read_len(buf, compact, 4)? {
        None => Ok(None),
        Some(len) => take(buf, len).map(Some),
    }
}

pub fn read_bytes(buf: &mut Bytes, compact: bool) -> Result<Bytes, DecodeError> {
    required(read_opt_bytes_raw(buf, compact)?)
}

pub fn read_opt_bytes(
    buf: &mut Bytes,
    compact: bool,
    nullable_now: bool,
) -> Result<Option<Bytes>, DecodeError> {
    null_check(nullable_now, read_opt_bytes_raw(buf, compact)?)
}

pub fn write_bytes<S: Sink>(s: &mut S, value: &[u8], compact: bool) -> Result<(), EncodeError> {
    write_len(s, Some(value.len()), compact, 4)?;
    s.put(value);
    Ok(())
}

pub fn write_opt_bytes<S: Sink>(
    s: &mut S,
    value: Option<&[u8]>,
    compact: bool,
    nullable_now: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    match value {
        Some(v) => write_bytes(s, v, compact),
        None if nullable_now => write_len(s, None, compact, 4),
        None => Err(EncodeError::NullNotAllowed { field }),
    }
}

/// A nullable struct is preceded by one byte: -1 for null, 1 for present.
pub fn read_opt_struct<T: StructCodec>(
    buf: &mut Bytes,
    version: i16,
    nullable_now: bool,
) -> Result<Option<T>, DecodeError> {
    if !nullable_now {
        return T::read_from(buf, version).map(Some);
    }
    match i8::read_fixed(buf)? {
        -1 => Ok(None),
        1 => T::read_from(buf, version).map(Some),
        other => Err(DecodeError::InvalidStructMarker(other)),
    }
}

pub fn write_opt_struct<S: Sink, T: StructCodec>(
    s: &mut S,
    value: Option<&T>,
    version: i16,
    nullable_now: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    match (value, nullable_now) {
        (Some(v), false) => v.write_to(s, version),
        (Some(v), true) => {
            write_fixed(s, 1i8);
            v.write_to(s, version)
        }
        (None, true) => {
            write_fixed(s, -1i8);
            Ok(())
        }
        (None, false) => Err(EncodeError::NullNotAllowed { field }),
    }
}

/// An element of an array field: a fixed-width value, a string, or a struct.
pub trait Elem: Sized {
    /// The fewest bytes one element takes; at least 1 is assumed by [`read_array`].
    fn min_size(compact: bool) -> usize;
    fn read_elem(buf: &mut Bytes, version: i16, compact: bool) -> Result<Self, DecodeError>;
    fn write_elem<S: Sink>(
        &self,
        s: &mut S,
        version: i16,
        compact: bool,
    ) -> Result<(), EncodeError>;
}

macro_rules! fixed_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            fn min_size(_compact: bool) -> usize {
                <$t as Fixed>::SIZE
            }
            fn read_elem(buf: &mut Bytes, _version: i16, _compact: bool) -> Result<Self, DecodeError> {
                <$t>::read_fixed(buf)
            }
            fn write_elem<S: Sink>(&self, s: &mut S, _version: i16, _compact: bool) -> Result<(), EncodeError> {
                self.write_fixed(s);
                Ok(())
            }
        }
    )*};
}

fixed_elem!(i8, i16, i32, i64, u16, u32, f64, bool, Uuid);

impl Elem for String {
    fn min_size(compact: bool) -> usize {
        if compact {
            1
        } else {
            2
        }
    }
    fn read_elem(buf: &mut Bytes, _version: i16, compact: bool) -> Result<Self, DecodeError> {
        read_string(buf, compact)
    }
    fn write_elem<S: Sink>(
        &self,
        s: &mut S,
        _version: i16,
        compact: bool,
    ) -> Result<(), EncodeError> {
        write_string(s, self, compact)
    }
}

impl<T: StructCodec> Elem for T {
    fn min_size(_compact: bool) -> usize {
        T::MIN_SIZE
    }
    fn read_elem(buf: &mut Bytes, version: i16, _compact: bool) -> Result<Self, DecodeError> {
        T::read_from(buf, version)
    }
    fn write_elem<S: Sink>(
        &self,
        s: &mut S,
        version: i16,
        _compact: bool,
    ) -> Result<(), EncodeError> {
        self.write_to(s, version)
    }
}

/// Reads an array of `T`. The element count is checked against the remaining bytes before
/// anything is reserved: each element needs at least `T::min_size` bytes (and at least one,
/// so an array of empty structs cannot claim more elements than there are bytes, as in Kafka's
/// own readers). A count of i32::MAX in a short frame is therefore an error, not an allocation.
fn read_opt_array_raw<T: Elem>(
    buf: &mut Bytes,
    version: i16,
    compact: bool,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(count) = read_len(buf, compact, 4)? else {
        return Ok(None);
    };
    let elem_bytes_min = T::min_size(compact).max(1);
    if count > buf.remaining() / elem_bytes_min {
        return Err(DecodeError::ArrayTooLong {
            count,
            remaining_bytes: buf.remaining(),
        });
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(T::read_elem(buf, version, compact)?);
    }
    Ok(Some(items))
}

pub fn read_array<T: Elem>(
    buf: &mut Bytes,
    version: i16,
    compact: bool,
) -> Result<Vec<T>, DecodeError> {
    required(read_opt_array_raw(buf, version, compact)?)
}

pub fn read_opt_array<T: Elem>(
    buf: &mut Bytes,
    version: i16,
    compact: bool,
    nullable_now: bool,
) -> Result<Option<Vec<T>>, DecodeError> {
    null_check(nullable_now, read_opt_array_raw(buf, version, compact)?)
}

pub fn write_array<S: Sink, T: Elem>(
    s: &mut S,
    items: &[T],
    version: i16,
    compact: bool,
) -> Result<(), EncodeError> {
    write_len(s, Some(items.len()), compact, 4)?;
    for item in items {
        item.write_elem(s, version, compact)?;
    }
    Ok(())
}

pub fn write_opt_array<S: Sink, T: Elem>(
    s: &mut S,
    items: Option<&[T]>,
    version: i16,
    compact: bool,
    nullable_now: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    match items {
        Some(v) => write_array(s, v, version, compact),
        None if nullable_now => write_len(s, None, compact, 4),
        None => Err(EncodeError::NullNotAllowed { field }),
    }
}

/// Reads a tagged-field section. `known` decodes the tags the caller knows from the slice
/// holding exactly that field's bytes and returns `Ok(true)`; it returns `Ok(false)` for tags
/// it does not know, which are kept raw in `unknown`.
pub fn read_tagged_fields(
    buf: &mut Bytes,
    unknown: &mut Vec<RawTaggedField>,
    mut known: impl FnMut(u32, &mut Bytes) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let count = read_uvarint(buf)?;
    for _ in 0..count {
        let tag = read_uvarint(buf)?;
        let declared_bytes = read_uvarint(buf)? as usize;
        let mut field = take(buf, declared_bytes)?;
        let raw = field.clone();
        if known(tag, &mut field)? {
            if !field.is_empty() {
                return Err(DecodeError::TaggedFieldSize {
                    tag,
                    declared_bytes,
                    used_bytes: declared_bytes - field.len(),
                });
            }
        } else {
            unknown.push((tag, raw));
        }
    }
    Ok(())
}

/// Writes the count of a tagged-field section.
pub fn write_tagged_count<S: Sink>(s: &mut S, count: usize) -> Result<(), EncodeError> {
    write_uvarint(
        s,
        u32::try_from(count).map_err(|_| EncodeError::TooLong(count))?,
    );
    Ok(())
}

/// Writes one known tagged field's header: its tag and the size of its value.
pub fn write_tag_header<S: Sink>(
    s: &mut S,
    tag: u32,
    value_bytes: usize,
) -> Result<(), EncodeError> {
    write_uvarint(s, tag);
    write_uvarint(
        s,
        u32::try_from(value_bytes).map_err(|_| EncodeError::TooLong(value_bytes))?,
    );
    Ok(())
}

/// Interleaves unknown tagged fields with known ones so the section stays in ascending tag
/// order, as the protocol requires.
pub struct UnknownTags<'a> {
    rest: &'a [RawTaggedField],
}

impl<'a> UnknownTags<'a> {
    pub fn new(unknown: &'a [RawTaggedField]) -> Self {
        UnknownTags { rest: unknown }
    }

    /// Writes the unknown fields whose tag is below `tag`.
    pub fn write_before<S: Sink>(&mut self, s: &mut S, tag: u32) -> Result<(), EncodeError> {
        while let Some(((t, raw), rest)) = self.rest.split_first() {
            if *t >= tag {
                break;
            }
            write_tag_header(s, *t, raw.len())?;
            s.put(raw);
            self.rest = rest;
        }
        Ok(())
    }

    /// Writes all the unknown fields not yet written.
    pub fn write_rest<S: Sink>(&mut self, s: &mut S) -> Result<(), EncodeError> {
        for (t, raw) in self.rest {
            write_tag_header(s, *t, raw.len())?;
            s.put(raw);
        }
        self.rest = &[];
        Ok(())
    }
}

/// Writes a tagged section holding only unknown fields.
pub fn write_unknown_tagged_fields<S: Sink>(
    s: &mut S,
    unknown: &[RawTaggedField],
) -> Result<(), EncodeError> {
    write_tagged_count(s, unknown.len())?;
    UnknownTags::new(unknown).write_rest(s)
}

/// The number of bytes a value writes, used for tagged-field sizes.
pub fn len_of(
    write: impl FnOnce(&mut LenSink) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let mut len = LenSink::default();
    write(&mut len)?;
    Ok(len.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tags_interleave_with_known_ones() {
        let unknown = vec![(0, Bytes::from_static(b"a")), (5, Bytes::from_static(b"b"))];
        let mut buf = BytesMut::new();
        let mut tags = UnknownTags::new(&unknown);
        tags.write_before(&mut buf, 3).unwrap();
        buf.put_slice(&[3, 0]); // a known tag 3, empty
        tags.write_rest(&mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 1, b'a', 3, 0, 5, 1, b'b']);
    }

    #[test]
    fn varints_roundtrip_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut buf = BytesMut::new();
            write_varint(&mut buf, v);
            assert!(buf.len() <= 5);
            assert_eq!(read_varint(&mut buf.freeze()), Ok(v));
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut buf = BytesMut::new();
            write_varlong(&mut buf, v);
            assert!(buf.len() <= 10);
            assert_eq!(read_varlong(&mut buf.freeze()), Ok(v));
        }
        let mut buf = BytesMut::new();
        write_uvarint(&mut buf, 300);
        assert_eq!(&buf[..], &[0xac, 0x02]);
    }

    #[test]
    fn compact_and_classic_lengths() {
        let mut buf = BytesMut::new();
        write_opt_string(&mut buf, None, true, true, "f").unwrap();
        write_opt_string(&mut buf, None, false, true, "f").unwrap();
        write_opt_bytes(&mut buf, None, false, true, "f").unwrap();
        write_string(&mut buf, "ab", true).unwrap();
        assert_eq!(
            &buf[..],
            &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, b'a', b'b']
        );
        assert_eq!(
            write_opt_string(&mut buf, None, true, false, "name"),
            Err(EncodeError::NullNotAllowed { field: "name" })
        );
        let long = "x".repeat(i16::MAX as usize + 1);
        assert!(write_string(&mut buf, &long, true).is_err());
    }
}
